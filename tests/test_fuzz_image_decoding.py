"""Fuzzing the one image decoder (tutorials_common.images: read_image_file,
and decode in a graph) as mnist_predict (images.decode_image_file: grey),
retraining and label_image (features.decode_image_file) and cifar10_predict
(trained_model.decode_images: 32x32) use it: PNG of every colour type and depth (grey, RGB,
palette, alpha, 16-bit), JPEG (with and without an EXIF orientation, valid
or not), GIF, BMP and WebP, of zero, one, 10000x1 pixels, cut short, with
flipped bytes, or random bytes behind a format's magic. Then the EXIF
orientation itself: each of its eight values, in both forms.

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
import pytest
import tensorflow as tf2
import tensorflow.compat.v1 as tf

from cifar10 import trained_model
from image_retraining import features
from image_retraining.errors import RetrainError
from mnist_cnn import images
from tutorials_common import images as decoder
from suite_helpers import bmp_bytes
from suite_helpers import slow_examples
from test_image_limits import gif_bytes
from test_image_limits import webp_bytes
from tutorials_common.errors import one_line

# Each example runs TensorFlow.
TF_EXAMPLES = slow_examples()

MAGIC = {'png': b'\x89PNG\r\n\x1a\n', 'jpeg': b'\xff\xd8\xff',
         'gif': b'GIF89a', 'bmp': b'BM', 'webp': b'RIFF\0\0\0\0WEBPVP8L',
         'jpeg xl': b'\xff\x0a'}
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


def exif_jpeg(pixels, orientation, little_endian=True, after_jfif=True,
              tag=0x0112):
  """JPEG bytes of uint8 [H, W, 3] pixels with an APP1 Exif segment, as a
  phone writes one: a TIFF header in either byte order, then a first IFD of
  the camera's make and the Orientation tag (a SHORT), after the JFIF
  segment or straight after the start of the image."""
  data = tf2.io.encode_jpeg(pixels, quality=95).numpy()
  order = '<' if little_endian else '>'
  entries = [(0x010F, 2, 4, b'Cam\0'),
             (tag, 3, 1, struct.pack(order + 'H', orientation) + b'\0\0')]
  tiff = ((b'II' if little_endian else b'MM') +
          struct.pack(order + 'HIH', 42, 8, len(entries)) +
          b''.join(struct.pack(order + 'HHI', *entry[:3]) + entry[3]
                   for entry in entries) + struct.pack(order + 'I', 0))
  body = b'Exif\0\0' + tiff
  segment = b'\xff\xe1' + struct.pack('>H', len(body) + 2) + body
  at = 4 + struct.unpack('>H', data[4:6])[0] if after_jfif else 2
  assert not after_jfif or data[2:4] == b'\xff\xe0'  # encode_jpeg's JFIF
  return data[:at] + segment + data[at:]


SIDES = st.one_of(st.sampled_from([(1, 1), (10000, 1), (1, 10000), (32, 32),
                                   (28, 28), (0, 5), (5, 0), (0, 0)]),
                  st.tuples(st.integers(1, 40), st.integers(1, 40)))
# (colour type, bits per sample, samples per pixel)
PNG_KINDS = [(0, 8, 1), (0, 16, 1), (2, 8, 3), (2, 16, 3), (3, 8, 1),
             (4, 8, 2), (4, 16, 2), (6, 8, 4), (6, 16, 4)]


@st.composite
def pictures(draw):
  """(file bytes, grey pixels or None): the grey levels are given when the
  file is intact and lossless (an 8-bit grey PNG, a BMP, a GIF of its
  screen's size, a WebP), so decoders can be checked exactly."""
  (height, width), fmt = draw(SIDES), draw(st.sampled_from(
      ['png', 'png', 'png', 'jpeg', 'gif', 'bmp', 'webp', 'random']))
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
  elif fmt == 'jpeg' and width * height and draw(st.booleans()):
    # An orientation: one of EXIF's eight, or any other number.
    data = exif_jpeg(np.repeat(grey[:, :, None], 3, axis=2), draw(
        st.one_of(st.integers(1, 8), st.integers(0, 65535))), draw(
            st.booleans()), draw(st.booleans()))
  elif fmt == 'jpeg':
    data = (tf2.io.encode_jpeg(np.repeat(grey[:, :, None], 3, axis=2))
            .numpy() if width * height else MAGIC['jpeg'] + b'\x00' * 8)
  elif fmt == 'gif' and width * height and draw(st.booleans()):
    # Black frames, one or more, on a screen of their size or another.
    screen = draw(st.one_of(st.none(), st.tuples(st.integers(0, 50),
                                                  st.integers(0, 50))))
    data = gif_bytes(width, height, draw(st.integers(1, 3)), screen)
    exact = np.zeros((height, width), np.uint8) if screen is None else None
  elif fmt == 'gif':
    data = GIF_1X1[:6] + struct.pack('<HH', width, height) + GIF_1X1[10:]
  elif fmt == 'bmp':
    data = bmp_bytes(np.repeat(grey[:, :, None], 3, axis=2))
    exact = grey if width * height else None
  elif fmt == 'webp':
    data = webp_bytes(width, height, fill) if width * height else MAGIC['webp']
    exact = np.full((height, width), fill, np.uint8) if width * height else None
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


class _HeaderReader(object):
  """The graph form's header (images._header) and JPEG orientation, built
  once."""

  def __init__(self):
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.encoded = tf.placeholder(tf.string, [])
      self.header = decoder._header(self.encoded)
      self.orientation = decoder._jpeg_orientation(
          decoder._Bytes(self.encoded))
      self.jpeg_shape = tf.io.extract_jpeg_shape(self.encoded, tf.int64)
    self.sess = tf.Session(graph=self.graph)


_headers = []


@settings(max_examples=TF_EXAMPLES)
@given(pictures())
def test_both_forms_read_the_same_header(picture):
  # The numpy form reads the header in Python, the graph form with
  # TensorFlow ops: the limit and the orientation must not depend on which.
  data, _ = picture
  if not _headers:
    _headers.append(_HeaderReader())
  reader = _headers[0]
  python = decoder._py_header(data)
  if python.format == 'jpeg':
    orientation = reader.sess.run(reader.orientation, {reader.encoded: data})
    assert python.orientation == orientation
    try:
      height, width = reader.sess.run(reader.jpeg_shape,
                                      {reader.encoded: data})[:2]
    except tf.errors.OpError:  # No size libjpeg can read: no decoding either.
      return
    python = python._replace(width=width, height=height, pixels=width * height)
  graph = reader.sess.run(reader.header, {reader.encoded: data})
  assert graph.tolist() == [python.width, python.height, python.pixels,
                            python.orientation, python.refused,
                            python.webp_alpha]


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


# What each EXIF orientation asks of the stored pixels to show them upright
# (the EXIF standard's Orientation tag; Pillow's ImageOps.exif_transpose does
# the same).
SHOWN_UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left to right
    3: lambda a: np.rot90(a, 2),  # upside down
    4: lambda a: a[::-1],  # mirrored top to bottom
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, -1),  # turned a quarter clockwise
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),  # the other diagonal
    8: lambda a: np.rot90(a, 1),  # turned a quarter anticlockwise
}


def _quadrants(height=16, width=24):
  """A picture no turn or mirror leaves unchanged: red, green, blue and
  white quarters, on JPEG's 8x8 blocks."""
  pixels = np.zeros((height, width, 3), np.uint8)
  pixels[:height // 2, :width // 2] = [255, 0, 0]
  pixels[:height // 2, width // 2:] = [0, 255, 0]
  pixels[height // 2:, :width // 2] = [0, 0, 255]
  pixels[height // 2:, width // 2:] = [255, 255, 255]
  return pixels


_graph_decoder = []


def _decode_in_a_graph(data):
  """decoder.decode in a tf.compat.v1 graph, as a SavedModel's signature
  and cifar10_predict run it."""
  if not _graph_decoder:
    graph = tf.Graph()
    with graph.as_default():
      encoded = tf.placeholder(tf.string, [])
      pixels = decoder.decode(encoded)
    _graph_decoder.append((tf.Session(graph=graph), encoded, pixels))
  sess, encoded, pixels = _graph_decoder[0]
  return sess.run(pixels, {encoded: data})


@pytest.mark.parametrize('little_endian, after_jfif', [(True, True),
                                                        (False, False)])
@pytest.mark.parametrize('orientation', sorted(SHOWN_UPRIGHT))
def test_the_exif_orientation_is_applied_in_both_forms(
    tmp_path, orientation, little_endian, after_jfif):
  data = exif_jpeg(_quadrants(), orientation, little_endian, after_jfif)
  stored = tf2.io.decode_jpeg(data, channels=3).numpy()  # EXIF ignored
  expected = SHOWN_UPRIGHT[orientation](stored)
  path = tmp_path / 'photo.jpg'
  path.write_bytes(data)
  np.testing.assert_array_equal(decoder.read_image_file(str(path)), expected)
  np.testing.assert_array_equal(_decode_in_a_graph(data), expected)


def _quarter_colours(pixels):
  """The mean colour of the middle of each quarter, [2, 2, 3]: away from
  the edges, which JPEG blurs."""
  height, width = pixels.shape[0] // 2, pixels.shape[1] // 2
  colours = np.zeros((2, 2, 3))
  for row in range(2):
    for column in range(2):
      quarter = pixels[row * height:(row + 1) * height,
                       column * width:(column + 1) * width]
      middle = quarter[height // 4:height - height // 4,
                       width // 4:width - width // 4]
      colours[row, column] = middle.reshape(-1, 3).mean(axis=0)
  return colours


def test_a_phone_photo_taken_sideways_comes_out_upright(tmp_path):
  # A camera stores the picture as its sensor saw it and says how to turn
  # it: here stored a quarter turn anticlockwise, tagged 6 (turn it a
  # quarter clockwise to show it).
  upright = _quadrants(32, 64)
  data = exif_jpeg(np.ascontiguousarray(np.rot90(upright, 1)), 6)
  path = tmp_path / 'sideways.jpg'
  path.write_bytes(data)
  for pixels in (decoder.read_image_file(str(path)), _decode_in_a_graph(data),
                 features.decode_image_file(str(path)).numpy() * 255):
    assert pixels.shape == upright.shape
    np.testing.assert_allclose(_quarter_colours(pixels),
                               _quarter_colours(upright), atol=30)
  # cifar10_predict's 32x32: the upright picture, made smaller.
  with tf.Graph().as_default():
    small = trained_model.decode_images(tf.constant([data]))
    with tf.Session() as sess:
      small = sess.run(small)[0]
  np.testing.assert_allclose(_quarter_colours(small),
                             _quarter_colours(upright), atol=30)


@pytest.mark.parametrize('orientation, tag', [
    (0, 0x0112), (9, 0x0112), (65535, 0x0112),  # not one of the eight
    (6, 0x0110),  # the value under another tag
])
def test_an_orientation_that_is_none_of_the_eight_changes_nothing(
    tmp_path, orientation, tag):
  data = exif_jpeg(_quadrants(), orientation, tag=tag)
  path = tmp_path / 'photo.jpg'
  path.write_bytes(data)
  stored = tf2.io.decode_jpeg(data, channels=3).numpy()
  np.testing.assert_array_equal(decoder.read_image_file(str(path)), stored)
  np.testing.assert_array_equal(_decode_in_a_graph(data), stored)
