"""cifar10_export.py: the SavedModel and the TensorFlow Lite files, used as a
user uses them, against the checkpoint evaluated through the project's graph."""
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow.compat.v1 as tf1

import cifar_fixtures
import suite_helpers
from cifar10 import cifar10
from cifar10 import cifar10_export
from cifar10 import cifar10_input
from tutorials_common.errors import UsageError

NAMES = cifar_fixtures.CIFAR10_EXPORT_NAMES
NUM_TEST = cifar_fixtures.CIFAR10_EXPORT_TEST_IMAGES


def checkpoint_probabilities(checkpoint_dir, pixels):
  """The checkpoint's softmax through the project's evaluation graph: the
  preprocessing and network of cifar10_eval.py, the moving averages."""
  with tf1.Graph().as_default():
    images = tf1.placeholder(tf1.float32, [None, 32, 32, 3])
    probabilities = cifar10.class_probabilities(
        cifar10_input.eval_images(images))
    saver = tf1.train.Saver(cifar10.variables_to_restore())
    with tf1.Session() as sess:
      saver.restore(sess, tf1.train.latest_checkpoint(checkpoint_dir))
      return sess.run(probabilities, {images: pixels})


def checkpoint_local4(checkpoint_dir, pixels):
  """The checkpoint's local4 activations (moving averages) through the
  evaluation preprocessing, in a plain graph."""
  with tf1.Graph().as_default():
    images = tf1.placeholder(tf1.float32, [None, 32, 32, 3])
    cifar10.inference(cifar10_input.eval_images(images))
    local4 = tf1.get_default_graph().get_tensor_by_name('local4/local4:0')
    saver = tf1.train.Saver(cifar10.variables_to_restore())
    with tf1.Session() as sess:
      saver.restore(sess, tf1.train.latest_checkpoint(checkpoint_dir))
      return sess.run(local4, {images: pixels})


@pytest.fixture
def model(cifar10_exported):
  return cifar10_exported


# Run in a fresh interpreter, outside the repository, with the project's
# packages made unimportable: the SavedModel must need TensorFlow alone.
FRESH_PROCESS = textwrap.dedent('''
    import importlib.abc, json, sys
    class NoProject(importlib.abc.MetaPathFinder):
      def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('cifar10', 'cli_support', 'mnist_cnn',
                                  'image_retraining'):
          raise ImportError('project package %s imported' % name)
    sys.meta_path.insert(0, NoProject())
    import numpy as np
    import tensorflow as tf
    export_dir, inputs, output = sys.argv[1:]
    pixels = np.load(inputs)
    model = tf.saved_model.load(export_dir)
    encoded = tf.constant([tf.io.encode_png(p).numpy()
                           for p in pixels.astype(np.uint8)])
    results = {}
    for name, signature, argument in (
        ('pixels', 'predict_images', dict(images=tf.constant(pixels))),
        ('one', 'predict_images', dict(images=tf.constant(pixels[:1]))),
        ('png', 'serving_default', dict(image_bytes=encoded))):
      out = model.signatures[signature](**argument)
      for key, value in out.items():
        results['%s_%s' % (name, key)] = value.numpy()
    features = model.signatures['feature_vector'](
        images=tf.constant(pixels / 255.0))['feature_vector']
    results['features'] = features.numpy()
    results['features_large'] = model.signatures['feature_vector'](
        images=tf.image.resize(pixels / 255.0, [50, 40]))['feature_vector'].numpy()
    results['specs'] = json.dumps({
        name: {key: [spec.dtype.name, spec.shape.as_list()]
               for key, spec in (list(fn.structured_input_signature[1].items())
                                 + list(fn.structured_outputs.items()))}
        for name, fn in model.signatures.items()})
    project = [m for m in sys.modules if m.split('.')[0] in ('cifar10',
                                                             'cli_support')]
    assert not project, project
    np.savez(output, **results)
''')


def test_export_writes_the_files_and_no_variables_or_leftovers(model):
  out = model['export_stdout']
  assert 'moving averages of the weights' in out
  assert os.path.basename(model['checkpoint']) in out
  for name in ('model.tflite', 'model_quantized.tflite'):
    assert '  %s: %d bytes\n' % (name, os.path.getsize(
        os.path.join(model['export_dir'], name))) in out
  assert re.search(r'^  SavedModel: \d+ bytes$', out, re.M)
  # The weights are constants in the graph: nothing to restore by name.
  saved = tf.train.list_variables(os.path.join(model['export_dir'],
                                               'variables', 'variables'))
  assert [name for name, _ in saved if name != '_CHECKPOINTABLE_OBJECT_GRAPH'] == []
  assert sorted(os.listdir(str(model['root']))) == ['data', 'export', 'train']


def test_saved_model_in_a_fresh_process_matches_the_checkpoint(model, tmp_path):
  images, _ = cifar_fixtures.cifar_test_images(model['data_dir'])
  pixels = images[:20].astype(np.float32)
  np.save(str(tmp_path / 'pixels.npy'), pixels)
  script = tmp_path / 'load.py'
  script.write_text(FRESH_PROCESS)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('PYTHONPATH', None)
  result = subprocess.run(
      [sys.executable, str(script), model['export_dir'],
       str(tmp_path / 'pixels.npy'), str(tmp_path / 'out.npz')],
      cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=240)
  assert result.returncode == 0, result.stderr
  out = np.load(str(tmp_path / 'out.npz'), allow_pickle=True)
  expected = checkpoint_probabilities(model['train_dir'], pixels)
  assert len(set(expected.argmax(axis=1))) > 1  # The images differ.
  for name in ('pixels', 'png'):
    probabilities = out[name + '_probabilities']
    assert probabilities.dtype == np.float32 and probabilities.shape == (20, 10)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5, rtol=0)
    assert out[name + '_classes'].dtype == np.int64
    np.testing.assert_array_equal(out[name + '_classes'],
                                  expected.argmax(axis=1))
    assert [n.decode() for n in out[name + '_class_names']] == [
        NAMES[c] for c in expected.argmax(axis=1)]
  np.testing.assert_allclose(out['one_probabilities'], expected[:1],
                             atol=1e-5, rtol=0)
  specs = json.loads(str(out['specs']))
  assert sorted(specs) == ['feature_vector', 'predict_images',
                           'serving_default']
  assert specs['feature_vector']['images'] == ['float32',
                                               [None, None, None, 3]]
  assert specs['feature_vector']['feature_vector'] == ['float32', [None, 192]]
  assert out['features_large'].shape == (20, 192)
  np.testing.assert_allclose(out['features'],
                             checkpoint_local4(model['train_dir'], pixels),
                             rtol=1e-4, atol=1e-4)
  assert specs['serving_default']['image_bytes'] == ['string', [None]]
  assert specs['predict_images']['images'] == ['float32', [None, 32, 32, 3]]
  for signature in ('serving_default', 'predict_images'):
    assert specs[signature]['probabilities'] == ['float32', [None, 10]]
    assert specs[signature]['classes'] == ['int64', [None]]
    assert specs[signature]['class_names'] == ['string', [None]]


def test_accuracy_equals_cifar10_eval_through_the_real_data_script(
    model, tmp_path, capsys):
  # The script in this process (its cifar10_eval.py run is a process of its
  # own, as a user's): one TensorFlow start-up less.
  real_data = suite_helpers.load_script('cifar10_export_real_data.py')
  status = real_data.main([
      '--data_dir', model['data_dir'], '--checkpoint_dir', model['train_dir'],
      '--export_dir', model['export_dir'], '--work_dir', str(tmp_path),
      '--num_examples', str(NUM_TEST), '--repeats', '2',
      '--output', str(tmp_path / 'figures.json')])
  stdout = capsys.readouterr().out
  assert status == 0, stdout
  figures = json.loads((tmp_path / 'figures.json').read_text())
  # The SavedModel's accuracy, computed here, is cifar10_eval.py's.
  images, labels = cifar_fixtures.cifar_test_images(model['data_dir'])
  loaded = tf.saved_model.load(model['export_dir'])
  classes = loaded.signatures['predict_images'](
      images=tf.constant(images.astype(np.float32)))['classes'].numpy()
  accuracy = float((classes == labels).mean())
  # A tiny fixture can score 1.0; what must hold is that the four figures agree.
  assert 0.1 < figures['eval_precision'] <= 1.0
  assert accuracy == pytest.approx(figures['eval_precision'], abs=1e-6)
  assert figures['saved_model_precision'] == pytest.approx(accuracy, abs=1e-9)
  assert figures['serving_default_precision'] == pytest.approx(accuracy,
                                                               abs=1e-9)
  assert figures['tflite_float_top1_agreement'] == 1.0
  assert figures['sizes_bytes']['model.tflite'] == os.path.getsize(
      os.path.join(model['export_dir'], 'model.tflite'))
  assert set(figures['latency_ms']) == {
      'SavedModel predict_images', 'SavedModel serving_default (PNG bytes)',
      'TFLite float', 'TFLite quantised'}
  assert all(t['one image'] > 0 and t['batch of 100'] > 0
             for t in figures['latency_ms'].values())
  assert '| cifar10_eval.py --run_once | %.4f |' % accuracy in stdout


@pytest.mark.filterwarnings('ignore:.*tf.lite.Interpreter is deprecated')
def test_tflite_files_agree_with_the_saved_model(model):
  images, _ = cifar_fixtures.cifar_test_images(model['data_dir'])
  pixels = images.astype(np.float32)
  loaded = tf.saved_model.load(model['export_dir'])
  reference = loaded.signatures['predict_images'](
      images=tf.constant(pixels))['probabilities'].numpy()
  tops = {}
  for name in ('model.tflite', 'model_quantized.tflite'):
    interpreter = tf.lite.Interpreter(
        model_path=os.path.join(model['export_dir'], name))
    detail = interpreter.get_input_details()[0]
    assert detail['dtype'] == np.float32
    assert list(detail['shape_signature']) == [-1, 32, 32, 3]
    interpreter.resize_tensor_input(detail['index'], list(pixels.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail['index'], pixels)
    interpreter.invoke()
    probabilities = interpreter.get_tensor(
        interpreter.get_output_details()[0]['index'])
    assert probabilities.shape == (len(pixels), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    tops[name] = probabilities.argmax(axis=1)
    if name == 'model.tflite':
      np.testing.assert_allclose(probabilities, reference, atol=1e-4)
  top1 = reference.argmax(axis=1)
  assert (tops['model.tflite'] == top1).all()
  assert (tops['model_quantized.tflite'] == top1).mean() >= 0.99
  quantized, float_size = [os.path.getsize(os.path.join(
      model['export_dir'], n)) for n in ('model_quantized.tflite',
                                         'model.tflite')]
  assert quantized < float_size / 3


def _one_error_line(result, status, *fragments):
  assert result.returncode == status, result.stdout + result.stderr
  assert 'Traceback' not in result.stderr
  errors = [l for l in result.stderr.splitlines()
            if l.startswith('cifar10_export: error: ')]
  assert len(errors) == 1, result.stderr
  for fragment in fragments:
    assert fragment in errors[0]


def test_no_checkpoint_is_a_clear_error(tmp_path, run_in_process):
  (tmp_path / 'empty').mkdir()
  result = run_in_process('cifar10.cifar10_export', [
      '--checkpoint_dir', str(tmp_path / 'empty'),
      '--export_dir', str(tmp_path / 'model')])
  _one_error_line(result, 2, 'no checkpoint in %s' % (tmp_path / 'empty'),
                  'cifar10_train --train_dir=%s' % (tmp_path / 'empty'))
  assert sorted(os.listdir(str(tmp_path))) == ['empty']


def test_existing_export_dir_is_refused_without_overwrite(model, tmp_path):
  (tmp_path / 'model').mkdir()
  (tmp_path / 'model' / 'keep.txt').write_text('mine')
  checkpoint = model['checkpoint']
  with pytest.raises(UsageError, match='already exists: pass --overwrite'):
    cifar10_export.export(checkpoint, str(tmp_path / 'model'), NAMES)
  (tmp_path / 'file').write_text('a file')
  with pytest.raises(UsageError, match='is not a folder'):
    cifar10_export.export(checkpoint, str(tmp_path / 'file'), NAMES,
                          overwrite=True)
  assert os.listdir(str(tmp_path / 'model')) == ['keep.txt']
  assert sorted(os.listdir(str(tmp_path))) == ['file', 'model']


def test_overwrite_replaces_whole_and_raw_weights_are_used(tmp_path):
  """In process (the command's start-up is tested above): a checkpoint
  without moving averages exports its raw weights; --overwrite swaps the new
  export in only when it is complete, leaving no temporary folder."""
  checkpoint = cifar_fixtures.write_checkpoint(
      tmp_path / 'train', 3, raw_class=7, moving_averages=False)
  # An earlier export: the SavedModel's files and folders only.
  (tmp_path / 'model' / 'variables').mkdir(parents=True)
  (tmp_path / 'model' / 'saved_model.pb').write_bytes(b'old export')
  with pytest.raises(UsageError):  # A failed export leaves the old one.
    cifar10_export.export(checkpoint + '-missing', str(tmp_path / 'model'),
                          NAMES, overwrite=True)
  assert (tmp_path / 'model' / 'saved_model.pb').read_bytes() == b'old export'
  assert sorted(os.listdir(str(tmp_path))) == ['model', 'train']
  uses_averages, sizes = cifar10_export.export(
      checkpoint, str(tmp_path / 'model'), NAMES, overwrite=True)
  assert uses_averages is False
  assert [what for what, _ in sizes] == ['SavedModel']
  assert sorted(os.listdir(str(tmp_path))) == ['model', 'train']
  assert (tmp_path / 'model' / 'saved_model.pb').read_bytes() != b'old export'
  loaded = tf.saved_model.load(str(tmp_path / 'model'))
  out = loaded.signatures['predict_images'](
      images=tf.random.uniform([3, 32, 32, 3], 0, 255))
  assert out['classes'].numpy().tolist() == [7, 7, 7]
  assert out['class_names'].numpy().tolist() == [b'horse'] * 3


@pytest.mark.parametrize('inside', [['thesis.txt'],
                                    ['saved_model.pb', 'notes.txt'],
                                    ['variables']])
def test_overwrite_replaces_only_an_earlier_export(tmp_path, run_in_process,
                                                   inside):
  """--overwrite on a folder that is not an export (a user's files, or an
  export with a file of theirs added) is one line, before any work, and
  the folder is as it was."""
  folder = tmp_path / 'model'
  folder.mkdir()
  for name in inside:
    if name == 'variables':
      (folder / name).mkdir()
    else:
      (folder / name).write_text('mine')
  result = run_in_process('cifar10.cifar10_export', [
      '--checkpoint_dir', str(tmp_path / 'no_training_here'),
      '--export_dir', str(folder), '--overwrite'])
  assert result.returncode == 2
  assert result.stderr.startswith(
      'cifar10_export: error: --export_dir %s is not an export of '
      'cifar10_export (it holds ' % folder)
  assert sorted(os.listdir(str(folder))) == sorted(inside)


def test_multi_crop_export_gives_the_checkpoints_multi_crop_softmax(
    cifar_trained, tmp_path):
  """--eval_crops=5 bakes the five crops into the model, as cifar10_eval
  scores them; the feature vectors stay the central crop's."""
  checkpoint = tf1.train.latest_checkpoint(str(cifar_trained['train_dir']))
  cifar10_export.export(checkpoint, str(tmp_path / 'model'), NAMES, crops=5)
  pixels = cifar_fixtures.cifar_test_images(cifar_trained['data_dir'])[0][:8]
  pixels = pixels.astype(np.float32)
  with tf1.Graph().as_default():
    images = tf1.placeholder(tf1.float32, [None, 32, 32, 3])
    probabilities = cifar10.class_probabilities(
        cifar10_input.eval_images(images, crops=5))
    saver = tf1.train.Saver(cifar10.variables_to_restore())
    with tf1.Session() as sess:
      saver.restore(sess, checkpoint)
      expected = sess.run(probabilities, {images: pixels})
  loaded = tf.saved_model.load(str(tmp_path / 'model'))
  out = loaded.signatures['predict_images'](images=tf.constant(pixels))
  np.testing.assert_allclose(out['probabilities'].numpy(), expected,
                             atol=1e-5)
  features = loaded.signatures['feature_vector'](
      images=tf.constant(pixels / 255.0))['feature_vector']
  np.testing.assert_allclose(
      features.numpy(),
      checkpoint_local4(str(cifar_trained['train_dir']),
                        pixels), rtol=1e-4, atol=1e-4)
