"""CIFAR-10 feature extractor export and CIFAR binary -> PNG folders."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow.compat.v1 as tf1

import cifar_fixtures
from cifar_fixtures import run_retraining
from cifar10 import cifar10
from cifar10 import cifar10_input
from image_retraining import cifar10_to_folders
from image_retraining import export_cifar10_features
from image_retraining import features
from image_retraining import final_layer
from image_retraining.errors import RetrainError
from tutorials_common.errors import UsageError

SHADOW = '/ExponentialMovingAverage'


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  """A CIFAR-10 checkpoint whose shadow values differ from the raw weights
  (3x them), and the shadow values by variable name."""
  train_dir = str(tmp_path_factory.mktemp('c10train'))
  reader = tf1.train.load_checkpoint(cifar_fixtures.write_checkpoint(
      train_dir, 0, raw_scale=3.0))
  shadow = {name[:-len(SHADOW)]: reader.get_tensor(name)
            for name in reader.get_variable_to_shape_map()
            if name.endswith(SHADOW)}
  return dict(train_dir=train_dir, shadow=shadow)


def _reference_local4(shadow, images24):
  """local4 computed in a plain v1 graph from the shadow values."""
  with tf1.Graph().as_default():
    x = tf1.placeholder(tf1.float32, [None, 24, 24, 3])
    cifar10.inference(x)
    graph = tf1.get_default_graph()
    with tf1.Session() as sess:
      for v in tf1.global_variables():
        v.load(shadow[v.op.name], sess)
      return sess.run(graph.get_tensor_by_name('local4/local4:0'),
                      {x: images24})


def test_export_uses_shadow_values_and_is_a_feature_extractor(checkpoint,
                                                               tmp_path):
  export_dir = str(tmp_path / 'features')
  result = run_retraining('export_cifar10_features.py', '--checkpoint_dir',
                      checkpoint['train_dir'], '--export_dir', export_dir)
  assert result.returncode == 0, result.stderr
  extractor = features.FeatureExtractor(export_dir)
  rng = np.random.RandomState(0)
  images = rng.uniform(0, 1, (3, 32, 32, 3)).astype(np.float32)
  out = extractor(images)
  assert out.shape == (3, 192)
  # A 32x32 image is not resized; then cifar10_eval's crop and standardisation.
  cropped = tf.image.resize_with_crop_or_pad(images * 255.0, 24, 24)
  expected = _reference_local4(
      checkpoint['shadow'],
      tf.image.per_image_standardization(cropped).numpy())
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
  # Any input size works.
  assert extractor(rng.uniform(0, 1, (2, 50, 40, 3))).shape == (2, 192)


def test_export_bad_inputs(tmp_path, checkpoint):
  with pytest.raises(UsageError, match='no checkpoint in %s: train a model '
                     'first' % tmp_path):
    export_cifar10_features.export(str(tmp_path), str(tmp_path / 'out'))
  with pytest.raises(UsageError, match='does not exist.*cifar10_train'):
    export_cifar10_features.export(str(tmp_path / 'missing' / 'model.ckpt'),
                                   str(tmp_path / 'out'))
  (tmp_path / 'full').mkdir()
  (tmp_path / 'full' / 'keep.txt').write_text('mine')
  with pytest.raises(RetrainError, match='exists and is not empty'):
    export_cifar10_features.export(checkpoint['train_dir'],
                                   str(tmp_path / 'full'))
  assert os.listdir(str(tmp_path / 'full')) == ['keep.txt']


def test_retrain_takes_the_cifar10_export(cifar10_export_dir, tmp_path):
  """cifar10_export's SavedModel as --tfhub_module: its feature_vector
  signature is the extractor, and the retrained model exports."""
  extractor = features.FeatureExtractor(cifar10_export_dir)
  assert extractor.image_size is None
  vectors = extractor(np.random.RandomState(1).uniform(0, 1, (4, 32, 32, 3)))
  assert vectors.shape == (4, 192)
  final_layer.export(extractor, np.zeros((192, 2), np.float32),
                     np.array([0.0, 1.0], np.float32), str(tmp_path / 'm'),
                     ['a', 'b'])
  loaded = tf.saved_model.load(str(tmp_path / 'm'))
  out = loaded.signatures['serving_default'](
      images=tf.zeros([1, 40, 30, 3]))['final_result'].numpy()
  assert out.shape == (1, 2) and out.argmax() == 1


def _write_cifar(path, labels, seed=0):
  rng = np.random.RandomState(seed)
  records = rng.randint(0, 256, (len(labels), 3073)).astype(np.uint8)
  records[:, 0] = labels
  records.tofile(str(path))
  return records


def test_cifar10_to_folders_selects_classes_and_counts(tmp_path):
  bins = tmp_path / 'data' / cifar10_input.BATCHES_DIR
  bins.mkdir(parents=True)
  records = _write_cifar(bins / 'data_batch_1.bin', [5, 6, 5, 0, 5, 6, 9])
  result = run_retraining('cifar10_to_folders.py', '--data_dir', tmp_path / 'data',
                      '--output_dir', tmp_path / 'out', '--classes', 'dog,6',
                      '--per_class', 2, '--files', 'data_batch_1')
  assert result.returncode == 0, result.stderr
  assert sorted(os.listdir(tmp_path / 'out')) == ['dog', 'frog']
  assert sorted(os.listdir(tmp_path / 'out' / 'dog')) == [
      'data_batch_1_00000.png', 'data_batch_1_00002.png']
  assert len(os.listdir(tmp_path / 'out' / 'frog')) == 2
  png = tf.io.read_file(str(tmp_path / 'out' / 'dog' /
                            'data_batch_1_00002.png'))
  image = tf.io.decode_png(png).numpy()
  np.testing.assert_array_equal(image[:, :, 1],
                                records[2, 1 + 1024:1 + 2048].reshape(32, 32))
  with pytest.raises(RetrainError, match="Unknown CIFAR-10 class 'unicorn'"):
    cifar10_to_folders.parse_classes('unicorn')


def test_filter_batches_keeps_only_chosen_classes(tmp_path):
  src = tmp_path / 'src'
  src.mkdir()
  _write_cifar(src / 'data_batch_1.bin', [0, 5, 1, 7, 4])
  counts = cifar10_to_folders.filter_batches(str(src), str(tmp_path / 'dst'),
                                          [0, 1, 2, 3, 4])
  assert counts == {'data_batch_1.bin': 3}
  kept = cifar10_input.read_records(str(tmp_path / 'dst' /
                                         'data_batch_1.bin'))
  assert list(kept[:, 0]) == [0, 1, 4]
