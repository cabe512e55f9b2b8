"""MNIST: the IDX reader, the model, training, save/restore, pictures, server."""
import functools
import gzip
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import sys
import threading

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorboard.backend.event_processing import event_accumulator

from tutorials_common import images as common_images
from mnist_cnn import images
from mnist_cnn import input_data
from mnist_cnn import mnist_draw_server
from mnist_cnn import model as mnist_model
import mnist_fixtures
from cifar_fixtures import run_script

STEP_LINE = re.compile(r'^Step: (\d+), Loss: ([\d.]+), Accuracy: ([\d.]+)$',
                       re.M)


# --- IDX reader ---------------------------------------------------------------

def test_idx_golden_bytes():
  labels = np.array([7, 2, 1], np.uint8)
  assert input_data.idx_bytes(labels) == (
      b'\x00\x00\x08\x01' b'\x00\x00\x00\x03' b'\x07\x02\x01')
  pictures = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(
      2, 28, 28)
  data = input_data.idx_bytes(pictures)
  assert data[:16] == b'\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x1c' \
                      b'\x00\x00\x00\x1c'
  parsed = input_data.parse_idx(data, 'x', input_data.IMAGES_MAGIC)
  np.testing.assert_array_equal(parsed, pictures)


@pytest.mark.parametrize('gz', [True, False])
def test_read_data_sets_gzipped_or_not(tmp_path, gz):
  data_dir = mnist_fixtures.write_mnist(tmp_path, 30, 20, gz=gz)
  data = input_data.read_data_sets(data_dir)
  assert data.train.images.shape == (30, 784)
  assert data.test.labels.shape == (20,)
  assert data.train.images.dtype == np.float32
  assert 0 <= data.train.images.min() and data.train.images.max() == 1.0
  # The first test image is what the writer drew.
  rng = np.random.RandomState(0)
  for label in rng.randint(0, 10, 30):
    mnist_fixtures.synthetic_digit(label, rng)
  test_labels = rng.randint(0, 10, 20)
  assert data.test.labels.tolist() == test_labels.tolist()


def _damage(data_dir, name, how):
  path = os.path.join(data_dir, name + '.gz')
  raw = gzip.open(path).read()
  if how == 'magic':
    raw = b'\x00\x00\x08\x09' + raw[4:]
  elif how == 'truncated':
    raw = raw[:-100]
  elif how == 'count':
    raw = input_data.idx_bytes(np.zeros(7, np.uint8))
  with gzip.open(path, 'wb') as f:
    f.write(raw)
  return path


@pytest.mark.parametrize('name, how, message', [
    ('train-images-idx3-ubyte', 'magic', 'magic number 2057, expected 2051'),
    ('t10k-images-idx3-ubyte', 'truncated', 'truncated or damaged'),
    ('t10k-labels-idx1-ubyte', 'count', 'holds 20 images but'),
])
def test_malformed_files_name_the_file(tmp_path, name, how, message):
  data_dir = mnist_fixtures.write_mnist(tmp_path, 30, 20)
  path = _damage(data_dir, name, how)
  with pytest.raises(input_data.MnistDataError, match=message) as error:
    input_data.read_data_sets(data_dir)
  assert os.path.basename(path) in str(error.value)


def test_training_script_reports_bad_data_without_a_traceback(
    tmp_path, run_in_process):
  data_dir = mnist_fixtures.write_mnist(tmp_path, 30, 20)
  _damage(data_dir, 'train-images-idx3-ubyte', 'truncated')
  result = run_in_process('mnist_cnn.mnist_deep', [
      '--data_dir', data_dir, '--checkpoint_dir', str(tmp_path / 'c'),
      '--log_dir', str(tmp_path / 'l')])
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr
  assert 'mnist_deep: error:' in result.stderr
  assert 'train-images-idx3-ubyte.gz' in result.stderr


def test_download_from_a_local_mirror_checks_md5_and_offline_message(
    tmp_path, monkeypatch):
  mirror = tmp_path / 'mirror'
  mnist_fixtures.write_mnist(mirror, 30, 20)
  names = list(input_data.FILES)
  fake_md5 = {name: hashlib.md5(
      gzip.open(str(mirror / (name + '.gz'))).read()).hexdigest()
              for name in names}
  monkeypatch.setattr(input_data, 'FILES', fake_md5)
  handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                              directory=str(mirror))
  handler.log_message = lambda *a: None
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  url = 'http://127.0.0.1:%d/' % server.server_address[1]
  try:
    data = input_data.read_data_sets(str(tmp_path / 'data'), source_url=url)
    assert data.train.images.shape == (30, 784)
    # A corrupt file on the mirror is refused and not kept.
    monkeypatch.setattr(input_data, 'FILES', dict(fake_md5, **{
        names[0]: '0' * 32}))
    with pytest.raises(input_data.MnistDataError, match='md5'):
      input_data.read_data_sets(str(tmp_path / 'data2'), source_url=url)
    # Nothing arrived, so no data folder is left behind either.
    assert not (tmp_path / 'data2').exists()
  finally:
    server.shutdown()
    server.server_close()
  # Offline: the server is gone.
  with pytest.raises(input_data.MnistDataError) as error:
    input_data.read_data_sets(str(tmp_path / 'data3'), source_url=url)
  assert 'Could not download' in str(error.value)
  assert 'train-images-idx3-ubyte.gz' in str(error.value)
  assert str(tmp_path / 'data3') in str(error.value)
  assert not (tmp_path / 'data3').exists()


# --- model ---------------------------------------------------------------------

def test_model_shapes_and_parameter_count():
  with tf.Graph().as_default():
    model = mnist_model.build()
    shapes = {v.op.name: v.shape.as_list() for v in tf.trainable_variables()}
    assert shapes == {
        'conv1/weights': [5, 5, 1, 32], 'conv1/biases': [32],
        'conv2/weights': [5, 5, 32, 64], 'conv2/biases': [64],
        'fc1/weights': [3136, 1024], 'fc1/biases': [1024],
        'fc2/weights': [1024, 10], 'fc2/biases': [10]}
    assert sum(np.prod(s) for s in shapes.values()) == 3274634
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      probabilities, raw, relu = mnist_model.look_at(
          sess, model, np.zeros(784, np.float32))
  assert probabilities.shape == (10,)
  assert abs(probabilities.sum() - 1) < 1e-5
  assert raw.shape == relu.shape == (28, 28, 32)
  # On a blank image conv1 is 0 before the bias, and ReLU(0.1) after.
  np.testing.assert_allclose(raw, 0, atol=1e-6)
  np.testing.assert_allclose(relu, 0.1, atol=1e-6)


# --- training, summaries, resume -------------------------------------------------

def test_short_training_on_synthetic_digits_reaches_high_accuracy(mnist_trained):
  lines = STEP_LINE.findall(mnist_trained['train'].stdout)
  assert [int(s) for s, _, _ in lines] == [40, 80, 120]
  assert float(lines[-1][2]) > 0.9
  assert float(lines[-1][1]) < float(lines[0][1])


def test_summaries_have_the_tags_and_steps(mnist_trained):
  def load(sub):
    acc = event_accumulator.EventAccumulator(
        os.path.join(mnist_trained['log_dir'], 'first', sub),
        size_guidance={event_accumulator.SCALARS: 0,
                       event_accumulator.HISTOGRAMS: 0})
    acc.Reload()
    return acc
  train, test = load('train'), load('test')
  # Training summaries every 100 steps and at the end, as the tutorial's.
  assert [e.step for e in train.Scalars('loss')] == [100, 120]
  assert [e.step for e in test.Scalars('accuracy')] == [40, 80, 120]
  assert set(test.Tags()['scalars']) == {'loss', 'accuracy'}
  assert {'conv1/weights', 'conv1/biases', 'conv2/weights', 'fc1/weights',
          'fc2/biases'} <= set(train.Tags()['histograms'])
  assert train.Tags()['graph']


def test_training_resumes_and_each_run_has_its_own_log_dir(
    mnist_trained, tmp_path, run_in_process):
  checkpoints, logs = str(tmp_path / 'checkpoints'), str(tmp_path / 'logs')
  shutil.copytree(mnist_trained['checkpoint_dir'], checkpoints)
  shutil.copytree(mnist_trained['log_dir'], logs)
  # In this process: the session's fixture already ran mnist_deep.py as a
  # user types it.
  result = run_in_process('mnist_cnn.mnist_deep', [
      '--data_dir', mnist_trained['data_dir'], '--steps', '150',
      '--eval_every', '50', '--checkpoint_dir', checkpoints, '--log_dir', logs,
      '--run_name', 'second'])
  assert result.returncode == 0, result.stderr
  assert 'Resuming from' in result.stdout
  assert [int(s) for s, _, _ in STEP_LINE.findall(result.stdout)] == [150]
  assert tf.train.latest_checkpoint(checkpoints).endswith('-150')
  assert sorted(os.listdir(logs)) == ['first', 'second']


# --- pictures and prediction ------------------------------------------------------

def _write_png(path, grey):
  with open(str(path), 'wb') as f:
    f.write(common_images.encode_png(np.asarray(grey, np.uint8)))


def test_a_dark_on_white_drawing_becomes_mnist_polarity(tmp_path):
  drawing = np.full((200, 150), 255, np.uint8)   # white paper
  drawing[30:170, 70:85] = 0                       # a black "1"
  _write_png(tmp_path / 'one.png', np.stack([drawing] * 3, -1))
  digit = images.to_mnist(images.decode_image_file(str(tmp_path / 'one.png')))
  picture = digit.reshape(28, 28)
  assert picture[0].max() == 0 and picture[:, 0].max() == 0  # black border
  assert picture[14, 13:15].min() > 0.9                          # white ink
  rows = np.flatnonzero(picture.max(axis=1) > 0.2)
  assert rows[-1] - rows[0] + 1 == 20                            # 20 px tall
  centre = (picture.sum(axis=1) * np.arange(28)).sum() / picture.sum()
  assert abs(centre - 13.5) <= 1
  # Light-on-dark gives the same digit.
  _write_png(tmp_path / 'inverse.png', 255 - drawing)
  inverse = images.to_mnist(images.decode_image_file(
      str(tmp_path / 'inverse.png')))
  np.testing.assert_allclose(inverse, digit, atol=1e-5)


def test_unreadable_image_is_a_clear_error(tmp_path):
  (tmp_path / 'digit.png').write_bytes(b'not a picture')
  with pytest.raises(images.ImageError, match='not a PNG, JPEG'):
    images.decode_image_file(str(tmp_path / 'digit.png'))


def _predict(mnist_trained, image, tmp_path):
  return run_script([os.path.join('mnist_cnn', 'mnist_predict.py'),
                     '--image', str(image), '--checkpoint_dir',
                     mnist_trained['checkpoint_dir'], '--chart',
                     str(tmp_path / 'chart.png')])


def test_restore_in_a_fresh_process_gives_identical_predictions(
    mnist_trained, tmp_path):
  rng = np.random.RandomState(5)
  picture = mnist_fixtures.synthetic_digit(1, rng)
  _write_png(tmp_path / 'digit.png', picture)
  result = _predict(mnist_trained, tmp_path / 'digit.png', tmp_path)
  assert result.returncode == 0, result.stderr
  printed = [float(p) for p in re.findall(r'^\d: ([\d.]+)$', result.stdout,
                                          re.M)]
  assert len(printed) == 10 and abs(sum(printed) - 1) < 1e-3
  assert 'Prediction: 1' in result.stdout
  # The same checkpoint restored here, on the same prepared digit.
  sess, model = mnist_model.restore(mnist_trained['checkpoint_dir'])
  digit = images.to_mnist(images.decode_image_file(str(tmp_path /
                                                       'digit.png')))
  probabilities, _, _ = mnist_model.look_at(sess, model, digit)
  np.testing.assert_allclose(printed, probabilities, atol=1e-4)
  # The chart: a matplotlib PNG of the digit beside its bars, one per digit.
  assert 'Bar chart written to %s' % (tmp_path / 'chart.png') in result.stdout
  chart = tf.image.decode_png((tmp_path / 'chart.png').read_bytes(),
                              channels=3).numpy()
  assert chart.shape == (310, 800, 3)
  assert len(np.unique(chart.reshape(-1, 3), axis=0)) > 20  # Not blank.
  assert np.all(chart == [255, 127, 14], axis=-1).sum() > 100
  assert not list(tmp_path.glob('.chart.png*'))  # No temporary file left.


def test_feature_maps_picture_is_the_4x16_grid(mnist_trained, tmp_path):
  _write_png(tmp_path / 'digit.png',
             mnist_fixtures.synthetic_digit(0, np.random.RandomState(1)))
  result = run_script([os.path.join('mnist_cnn', 'mnist_feature_maps.py'),
                       '--image', str(tmp_path / 'digit.png'),
                       '--checkpoint_dir', mnist_trained['checkpoint_dir'],
                       '--output', str(tmp_path / 'maps.png')])
  assert result.returncode == 0, result.stderr
  grid = images.decode_image_file(str(tmp_path / 'maps.png'))
  assert grid.shape == (4 * 57 + 1, 16 * 57 + 1)


def test_predict_without_a_checkpoint_says_how_to_make_one(tmp_path,
                                                          run_in_process):
  _write_png(tmp_path / 'digit.png', np.zeros((28, 28)))
  result = run_in_process('mnist_cnn.mnist_predict', [
      '--image', str(tmp_path / 'digit.png'),
      '--checkpoint_dir', str(tmp_path / 'none')])
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert 'checkpoint folder %s does not exist' % (tmp_path / 'none') in (
      result.stderr)
  assert 'mnist_deep --checkpoint_dir=%s' % (tmp_path / 'none') in (
      result.stderr)


# --- the draw-a-digit server ---------------------------------------------------------

@pytest.fixture(scope='module')
def draw_server(mnist_trained):
  server = mnist_draw_server.make_server(mnist_trained['checkpoint_dir'], 0)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield server.server_address[1]
  server.shutdown()
  server.server_close()


def _post(port, body, headers=None):
  connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
  connection.request('POST', '/predict', body=body, headers=headers or {
      'Content-Type': 'application/json'})
  response = connection.getresponse()
  return response.status, json.loads(response.read())


def test_server_predicts_a_drawing(draw_server):
  picture = np.full((100, 100), 255)
  picture[10:90, 45:55] = 0  # a "1" in black on white
  status, result = _post(draw_server, json.dumps(
      {'width': 100, 'height': 100, 'pixels': picture.ravel().tolist()}))
  assert status == 200
  assert result['prediction'] == 1
  assert abs(sum(result['probabilities']) - 1) < 1e-4
  assert result['feature_maps'].startswith('data:image/png;base64,')


@pytest.mark.parametrize('body, message', [
    ('not json', 'not JSON'),
    (json.dumps({'width': 2, 'height': 2, 'pixels': [1, 2, 3]}), 'Wrong size'),
    (json.dumps({'width': 2, 'height': 2, 'pixels': [1, 'a', 3, 4]}),
     'finite numbers'),
    (json.dumps({'width': 2, 'height': 2, 'pixels': [1, None, 3, 4]}),
     'finite numbers'),
    (json.dumps({'width': 5000, 'height': 1, 'pixels': []}), 'too large'),
    (json.dumps({'width': -1, 'height': 1, 'pixels': []}), 'positive'),
    (json.dumps([1, 2]), 'JSON object'),
])
def test_server_rejects_bad_requests_and_keeps_serving(draw_server, body,
                                                       message):
  status, result = _post(draw_server, body)
  assert status == 400 and message in result['error']
  status, _ = _post(draw_server, json.dumps(
      {'width': 1, 'height': 1, 'pixels': [0]}))
  assert status == 200


def test_server_rejects_an_oversized_body(draw_server):
  connection = http.client.HTTPConnection('127.0.0.1', draw_server, timeout=30)
  connection.putrequest('POST', '/predict')
  connection.putheader('Content-Length', str(50 * 1024 * 1024))
  connection.endheaders()
  response = connection.getresponse()
  assert response.status == 400
  assert 'too large' in json.loads(response.read())['error']


def test_predict_prints_the_digit_with_the_core_install_only(
    mnist_trained, tmp_path, monkeypatch, run_in_process):
  """The default invocation (no --chart) needs nothing of the extras: with
  matplotlib unimportable it prints the prediction and writes no file."""
  _write_png(tmp_path / 'digit.png',
             mnist_fixtures.synthetic_digit(1, np.random.RandomState(5)))
  monkeypatch.setitem(sys.modules, 'matplotlib', None)  # import fails
  monkeypatch.chdir(tmp_path)
  result = run_in_process('mnist_cnn.mnist_predict', [
      '--image', str(tmp_path / 'digit.png'),
      '--checkpoint_dir', mnist_trained['checkpoint_dir']])
  assert result.returncode == 0, result.stderr
  assert re.search(r'^Prediction: \d$', result.stdout, re.M)
  assert sorted(os.listdir(str(tmp_path))) == ['digit.png']
  # Asked for a chart, it says in one line what to install.
  result = run_in_process('mnist_cnn.mnist_predict', [
      '--image', str(tmp_path / 'digit.png'), '--chart', 'chart.png',
      '--checkpoint_dir', mnist_trained['checkpoint_dir']])
  assert result.returncode == 2
  assert result.stderr.startswith('mnist_predict: error: --chart needs '
                                  'matplotlib')
