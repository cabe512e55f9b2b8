"""Fuzzing the one image decoder (tutorials_common.images: read_image_file,
and decode in a graph) as mnist_predict (images.decode_image_file: grey),
retraining and label_image (features.decode_image_file) and cifar10_predict
(trained_model.decode_images: 32x32) use it: PNG of every colour type and depth (grey, RGB,
palette, alpha, 16-bit), JPEG, GIF and BMP, of zero, one, 10000x1 pixels,
cut short, with flipped bytes, or random bytes behind a format's magic.

Each property: the right pixels, or the module's own error with a message
(ImageError, RetrainError; cifar10_predict reports a TensorFlow OpError as a
one-line failure); never another exception, never a hang.
"""
import os
import struct
import tempfile
import zlib

from hypothesis import given, settings, strategies as st
import numpy as np
import tensorflow as tf2
import tensorflow.compat.v1 as tf

from cifar10 import trained_model
from image_retraining import features
from image_retraining.errors import RetrainError
from mnist_cnn import images
from tutorials_common import images as decoder
from suite_helpers import bmp_bytes
from suite_helpers import slow_examples
from tutorials_common.errors import one_line

# Each example runs TensorFlow.
TF_EXAMPLES = slow_examples()

MAGIC = {'png': b'\x89PNG\r\n\x1a\n', 'jpeg': b'\xff\xd8\xff',
         'gif': b'GIF89a', 'bmp': b'BM'}
# A 1x1 transparent GIF, the smallest common one.
GIF_1X1 = (b'GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9'
           b'\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00'
           b'\x02\x02D\x01\x00;')


def _chunk(kind, data):
  return (struct.pack('>I', len(data)) + kind + data +
          struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))


def png_bytes(width, height, colour_type, depth, rows, palette=None):
  """A PNG with filter 0 on every row, written by hand so that every colour
  type and depth (and sizes no encoder would write) can be made."""
  data = MAGIC['png'] + _chunk(b'IHDR', struct.pack(
      '>IIBBBBB', width, height, depth, colour_type, 0, 0, 0))
  if palette is not None:
    data += _chunk(b'PLTE', palette)
  raw = b''.join(b'\x00' + row for row in rows)
  return data + _chunk(b'IDAT', zlib.compress(raw)) + _chunk(b'IEND', b'')


SIDES = st.one_of(st.sampled_from([(1, 1), (10000, 1), (1, 10000), (32, 32),
                                   (28, 28), (0, 5), (5, 0), (0, 0)]),
                  st.tuples(st.integers(1, 40), st.integers(1, 40)))
# (colour type, bits per sample, samples per pixel)
PNG_KINDS = [(0, 8, 1), (0, 16, 1), (2, 8, 3), (2, 16, 3), (3, 8, 1),
             (4, 8, 2), (4, 16, 2), (6, 8, 4), (6, 16, 4)]


@st.composite
def pictures(draw):
  """(file bytes, grey pixels or None): the grey levels are given when the
  file is an intact 8-bit grey PNG, so decoders can be checked exactly."""
  (height, width), fmt = draw(SIDES), draw(st.sampled_from(
      ['png', 'png', 'png', 'jpeg', 'gif', 'bmp', 'random']))
  fill = draw(st.integers(0, 255))
  if width * height > 2000:  # big pictures: one grey level and a bright pixel
    grey = np.full((height, width), fill, np.uint8)
    grey.flat[draw(st.integers(0, width * height - 1))] = 255
  else:
    # Bytes, not a list of integers: Hypothesis draws them ~10x faster.
    grey = np.frombuffer(draw(st.binary(
        min_size=width * height, max_size=width * height)),
        np.uint8).reshape(height, width)
  exact = None
  if fmt == 'png':
    colour_type, depth, samples = draw(st.sampled_from(PNG_KINDS))
    values = np.repeat(grey[:, :, None], samples, axis=2)
    if depth == 16:
      values = values.astype('>u2') * 257  # the same grey levels on 16 bits
    palette = None
    if colour_type == 3:
      entries = draw(st.integers(1, 256))  # grey levels past it: an error
      palette = draw(st.binary(min_size=3 * entries, max_size=3 * entries))
    data = png_bytes(width, height, colour_type, depth,
                     [row.tobytes() for row in values], palette)
    if colour_type == 0 and depth == 8 and width * height:
      exact = grey
  elif fmt == 'jpeg':
    data = (tf2.io.encode_jpeg(np.repeat(grey[:, :, None], 3, axis=2))
            .numpy() if width * height else MAGIC['jpeg'] + b'\x00' * 8)
  elif fmt == 'gif':
    data = GIF_1X1[:6] + struct.pack('<HH', width, height) + GIF_1X1[10:]
  elif fmt == 'bmp':
    data = bmp_bytes(np.repeat(grey[:, :, None], 3, axis=2))
    exact = grey if width * height else None
  else:
    data = draw(st.sampled_from(list(MAGIC.values()) + [b''])) + draw(
        st.binary(max_size=200))
  how = draw(st.sampled_from(['intact', 'intact', 'cut', 'flip']))
  if how == 'cut' and data:
    data, exact = data[:draw(st.integers(0, len(data) - 1))], None
  elif how == 'flip' and data:
    at = draw(st.integers(0, len(data) - 1))
    data = (data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) +
            data[at + 1:])
    exact = None
  return data, exact


def _write(folder, data):
  path = os.path.join(folder, 'picture.png')  # the name does not matter
  with open(path, 'wb') as f:
    f.write(data)
  return path


@settings(max_examples=TF_EXAMPLES)
@given(pictures())
def test_mnist_decode_image_file_gives_grey_levels_or_image_error(picture):
  data, exact = picture
  with tempfile.TemporaryDirectory() as folder:
    path = _write(folder, data)
    try:
      grey = images.decode_image_file(path)
    except images.ImageError as e:
      assert path in str(e)
      assert exact is None, 'an intact grey picture was refused: %s' % e
      return
  assert grey.dtype == np.float32 and grey.ndim == 2 and grey.size
  assert grey.min() >= 0 and grey.max() <= 255
  if exact is not None:
    np.testing.assert_array_equal(grey, exact)


@settings(max_examples=TF_EXAMPLES)
@given(pictures())
def test_the_decoder_gives_rgb_uint8_or_image_error(picture):
  data, exact = picture
  with tempfile.TemporaryDirectory() as folder:
    path = _write(folder, data)
    try:
      pixels = decoder.read_image_file(path)
    except decoder.ImageError as e:
      assert path in str(e) and '\n' not in str(e)
      assert '{{' not in str(e) and '[Op:' not in str(e)  # TF's plumbing
      assert exact is None, 'an intact grey picture was refused: %s' % e
      return
  assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.size
  assert pixels.shape[2] == 3
  if exact is not None:
    for channel in range(3):
      np.testing.assert_array_equal(pixels[:, :, channel], exact)


@settings(max_examples=TF_EXAMPLES)
@given(pictures())
def test_retraining_decode_image_file_gives_rgb_or_retrain_error(picture):
  data, exact = picture
  with tempfile.TemporaryDirectory() as folder:
    path = _write(folder, data)
    try:
      image = features.decode_image_file(path).numpy()
    except RetrainError as e:
      assert path in str(e) and '\n' not in str(e)
      assert '{{' not in str(e) and '[Op:' not in str(e)  # TF's plumbing
      assert exact is None, 'an intact grey picture was refused: %s' % e
      return
  assert image.dtype == np.float32 and image.ndim == 3 and image.size
  assert image.shape[2] == 3 and image.min() >= 0 and image.max() <= 1
  if exact is not None:
    np.testing.assert_allclose(image[:, :, 1], exact / 255.0, atol=1e-6)


class _CifarDecoder(object):
  """cifar10_predict's decoding graph, built once."""

  def __init__(self):
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.encoded = tf.placeholder(tf.string, [None])
      self.pixels = trained_model.decode_images(self.encoded)
    self.sess = tf.Session(graph=self.graph)


_cifar = []


@settings(max_examples=TF_EXAMPLES)
@given(pictures())
def test_cifar10_predict_decoding_gives_32x32_or_a_one_line_failure(picture):
  data, exact = picture
  if not _cifar:
    _cifar.append(_CifarDecoder())
  decoder = _cifar[0]
  try:
    pixels = decoder.sess.run(decoder.pixels, {decoder.encoded: [data]})
  except tf.errors.OpError as e:  # Predictor.classify's failure report
    reason = one_line(e)
    assert reason and '\n' not in reason
    assert exact is None, 'an intact grey picture was refused: %s' % reason
    return
  assert pixels.shape == (1, 32, 32, 3) and pixels.dtype == np.float32
  assert np.isfinite(pixels).all()
  assert pixels.min() >= 0 and pixels.max() <= 255
  if exact is not None and exact.shape == (32, 32):
    np.testing.assert_allclose(pixels[0, :, :, 0], exact, atol=1e-3)


def test_mnist_reads_a_bmp(tmp_path):
  # Found by the fuzzer: decode_image(channels=1) refuses every BMP
  # ("`channels` must be 0, 3 or 4 for BMP"), so mnist_predict could not
  # read the BMPs its README promises.
  grey = np.zeros((6, 5), np.uint8)
  grey[1:5, 2] = 255
  path = tmp_path / 'digit.bmp'
  path.write_bytes(bmp_bytes(np.repeat(grey[:, :, None], 3, axis=2)))
  np.testing.assert_array_equal(images.decode_image_file(str(path)), grey)


def test_mnist_image_error_says_why(tmp_path):
  path = tmp_path / 'digit.png'
  path.write_bytes(MAGIC['png'] + b'\x01' * 30)
  try:
    images.decode_image_file(str(path))
  except images.ImageError as e:
    assert str(path) in str(e) and 'Invalid PNG' in str(e)
    assert '\n' not in str(e)
  else:
    raise AssertionError('a damaged PNG was decoded')
