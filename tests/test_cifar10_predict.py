"""cifar10_predict.py on image files of every kind, as a user runs it."""
import os
import re

import numpy as np
import pytest
import tensorflow as tf

import cifar_fixtures
from cifar_fixtures import run_script
from cifar10 import cifar10_predict
from cifar10 import trained_model
from suite_helpers import bmp_bytes
from tutorials_common.errors import UsageError

PREDICT = os.path.join('cifar10', 'cifar10_predict.py')
LINE = re.compile(r'^(.+): ((?:[a-z]+ [\d.]+)(?:, [a-z]+ [\d.]+)*)$', re.M)


@pytest.fixture
def model(cifar10_exported):
  return cifar10_exported


def write_images(folder, images):
  """Pictures of test images in five forms, and two files that are not."""
  folder.mkdir()
  grey = np.round(images[2].astype(np.float32).mean(axis=2, keepdims=True))
  large = tf.image.resize(images[3].astype(np.float32), [300, 500])
  files = {
      'a.png': tf.io.encode_png(images[0]).numpy(),
      'b.jpg': tf.io.encode_png(images[1]).numpy(),  # PNG bytes, .jpg name.
      'c_grey.png': tf.io.encode_png(grey.astype(np.uint8)).numpy(),
      'd_500x300.jpeg': tf.io.encode_jpeg(
          tf.cast(tf.clip_by_value(tf.round(large), 0, 255), tf.uint8),
          quality=95).numpy(),
      'e.bmp': bmp_bytes(images[4]),
  }
  files['broken.png'] = files['a.png'][:60]
  files['notes.txt'] = b'not a picture\n'
  for name, data in files.items():
    (folder / name).write_bytes(data)
  return files


def test_predict_prints_the_saved_model_classes_and_skips_bad_files(model,
                                                                      tmp_path):
  images, _ = cifar_fixtures.cifar_test_images(model['data_dir'])
  folder = tmp_path / 'pictures'
  files = write_images(folder, images)
  chart = tmp_path / 'chart.png'
  result = run_script([PREDICT, '--checkpoint_dir', model['train_dir'],
                       '--data_dir', model['data_dir'], '--top_k', '2',
                       '--batch_size', '3', '--chart', str(chart), str(folder),
                       str(tmp_path / 'missing.png')])
  assert result.returncode == 0, result.stderr
  assert 'Traceback' not in result.stderr
  lines = LINE.findall(result.stdout)
  good = ['a.png', 'b.jpg', 'c_grey.png', 'd_500x300.jpeg', 'e.bmp']
  assert [path for path, _ in lines] == [str(folder / n) for n in good]
  loaded = tf.saved_model.load(model['export_dir'])
  expected = loaded.signatures['serving_default'](
      image_bytes=tf.constant([files[n] for n in good]))
  probabilities = expected['probabilities'].numpy()
  for (_, printed), p in zip(lines, probabilities):
    top = np.argsort(-p)[:2]
    pairs = [pair.split(' ') for pair in printed.split(', ')]
    assert [name for name, _ in pairs] == [cifar_fixtures.CIFAR10_EXPORT_NAMES[i] for i in top]
    assert [float(v) for _, v in pairs] == pytest.approx(p[top], abs=6e-4)
  # The grey picture is classified as its grey level in all three channels.
  grey = tf.io.decode_png(files['c_grey.png'], channels=3)
  np.testing.assert_allclose(
      probabilities[2],
      loaded.signatures['predict_images'](
          images=tf.cast(grey, tf.float32)[None])['probabilities'][0],
      atol=1e-5)
  for name in ('broken.png', 'notes.txt'):
    assert re.search(r'^cifar10_predict: skipped %s: not an image it can '
                     r'read \(.+\)$' % re.escape(str(folder / name)),
                     result.stderr, re.M)
  assert ('cifar10_predict: skipped %s: no such file or folder' %
          (tmp_path / 'missing.png')) in result.stderr
  assert 'classified 5 image(s), skipped 3' in result.stderr
  # The chart: one row per picture (matplotlib, 3.1 inches at 100 dpi each),
  # each picture beside its bars.
  assert 'Bar chart written to %s' % chart in result.stdout
  picture = tf.io.decode_png(chart.read_bytes(), channels=3).numpy()
  assert picture.shape == (5 * 310, 800, 3)
  for row in range(5):
    block = picture[row * 310:(row + 1) * 310]
    assert len(np.unique(block.reshape(-1, 3), axis=0)) > 20  # Not blank.
    assert np.all(block == [255, 127, 14], axis=-1).any()  # The best bar.


def test_no_readable_image_fails_naming_each_file(model, tmp_path,
                                                 run_in_process):
  (tmp_path / 'empty.png').write_bytes(b'')
  (tmp_path / 'notes.jpg').write_text('text')
  result = run_in_process('cifar10.cifar10_predict', [
      '--checkpoint_dir', model['train_dir'], str(tmp_path / 'empty.png'),
      str(tmp_path / 'notes.jpg')])
  assert result.returncode == 2, result.stdout + result.stderr
  assert 'Traceback' not in result.stderr
  assert result.stdout == ''
  for name in ('empty.png', 'notes.jpg'):
    assert 'skipped %s: not an image it can read' % (tmp_path / name) in (
        result.stderr)
  assert result.stderr.rstrip().splitlines()[-1] == (
      'cifar10_predict: error: none of the 2 file(s) could be read as an '
      'image.')


def test_raw_weights_checkpoint_is_used_and_said_once(tmp_path,
                                                      run_in_process):
  checkpoint = cifar_fixtures.write_checkpoint(
      tmp_path / 'train', 3, raw_class=7, moving_averages=False)
  picture = tmp_path / 'picture.png'
  picture.write_bytes(tf.io.encode_png(
      np.full([40, 20, 3], 200, np.uint8)).numpy())
  result = run_in_process('cifar10.cifar10_predict', [
      '--checkpoint_dir', str(tmp_path / 'train'), '--data_dir',
      str(tmp_path / 'nowhere'), '--eval_flip', '--top_k', '1', str(picture)])
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines() == ['%s: horse 1.000' % picture]
  notes = [l for l in result.stderr.splitlines() if 'moving averages' in l]
  assert notes == ['cifar10_predict: checkpoint %s has no moving averages of '
                   'the weights; using its raw weights.' % checkpoint]


def test_no_checkpoint_is_a_usage_error(tmp_path):
  """The check both commands make first (cifar10_export's test runs it as a
  command: exit status 2, one line)."""
  (tmp_path / 'train').mkdir()
  folder = re.escape(str(tmp_path / 'train'))
  with pytest.raises(UsageError, match=r'no checkpoint in %s: train a model '
                     r'first \(cifar10_train --train_dir=%s, or python '
                     r'cifar10/cifar10_train.py in a checkout\)' % (folder,
                                                                 folder)):
    trained_model.require_checkpoint(str(tmp_path / 'train'))
  with pytest.raises(UsageError, match='does not exist.*cifar10_train'):
    trained_model.require_checkpoint(str(tmp_path / 'nowhere'))


def test_a_batch_of_images_is_one_session_run(model):
  """10,000 images must not mean 10,000 session runs: a batch is one run,
  and only a batch holding an unreadable file is decoded image by image."""
  images, _ = cifar_fixtures.cifar_test_images(model['data_dir'])
  encoded = [tf.io.encode_png(image).numpy() for image in images]
  predictor = cifar10_predict.Predictor(
      trained_model.require_checkpoint(model['train_dir']))
  runs = []
  real_run = predictor.sess.run
  predictor.sess.run = lambda *a, **k: runs.append(1) or real_run(*a, **k)
  probabilities, pixels, failures = predictor.classify(encoded)
  assert len(runs) == 1 and failures == []
  assert probabilities.shape == (len(images), 10)
  np.testing.assert_array_equal(pixels, images.astype(np.float32))
  runs[:] = []
  mixed = encoded[:5] + [b'not an image'] + encoded[5:9]
  again, _, failures = predictor.classify(mixed)
  assert [i for i, _ in failures] == [5]
  assert len(runs) == 1 + len(mixed) + 1
  np.testing.assert_allclose(again, probabilities[:9], atol=1e-6)
  predictor.sess.close()


def test_a_checkpoint_path_one_level_off_says_which_to_use(model,
                                                           run_in_process):
  train_dir = model['train_dir']
  latest = tf_latest(train_dir)
  one_file = latest + '.index'
  result = run_in_process('cifar10.cifar10_predict', [
      '--checkpoint_dir', one_file, 'cat.png'])
  assert result.returncode == 2
  assert result.stderr == (
      'cifar10_predict: error: --checkpoint_dir=%s is one file of the '
      'checkpoint %s: point --checkpoint_dir at its folder, '
      '--checkpoint_dir=%s, or at the checkpoint itself, '
      '--checkpoint_dir=%s.\n' % (one_file, latest, train_dir, latest))
  # The folder above the trainer's: its sub-folder is named.
  above = os.path.dirname(train_dir)
  result = run_in_process('cifar10.cifar10_predict', [
      '--checkpoint_dir', above, 'cat.png'])
  assert result.returncode == 2
  assert result.stderr == (
      'cifar10_predict: error: no checkpoint in %s itself, but in its '
      'sub-folder %s: use --checkpoint_dir=%s.\n' % (above, train_dir,
                                                     train_dir))


def tf_latest(folder):
  return tf.train.latest_checkpoint(folder)
