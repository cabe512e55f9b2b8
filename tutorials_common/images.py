"""The one image decoder: encoded bytes to RGB pixels, for every command.

`decode` is the graph form (usable in a tf.function, a map_fn or a
tf.compat.v1 graph); `read_image_file` the numpy form, for one file. Both
decode by content, whatever the file's name says: PNG, JPEG, GIF (its first
frame), BMP and WebP, everything TensorFlow's decode_image reads. Grey-scale
becomes RGB and an alpha channel is dropped, so the result is always uint8
[H, W, 3]. Each caller resizes as it needs; `resize_for_cifar10` is the one
resize rule of the CIFAR-10 network (cifar10_predict, cifar10_export and the
feature-vector signature retraining uses). `encode_png` is the way back:
pixels to PNG bytes (the feature-map pictures, the draw page's images).
"""
import numpy as np
import tensorflow as tf

from tutorials_common.errors import UsageError
from tutorials_common.errors import one_line

FORMATS = 'PNG, JPEG, GIF, BMP or WebP'
CIFAR10_SIZE = 32


class ImageError(UsageError):
  """A file that cannot be read, or read as a picture."""


def decode(contents):
  """A scalar string tensor of encoded image bytes -> uint8 [H, W, 3].

  Decoded as RGB (then made grey by whoever wants grey): TensorFlow's BMP
  decoder refuses channels=1.
  """
  image = tf.io.decode_image(contents, channels=3, expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def _decode_bytes(contents):
  if tf.executing_eagerly():
    return decode(tf.constant(contents)).numpy()
  # Graph mode (the commands that run tf.compat.v1 graphs): a graph of its own.
  with tf.Graph().as_default():
    encoded = tf.compat.v1.placeholder(tf.string, [])
    pixels = decode(encoded)
    with tf.compat.v1.Session() as sess:
      return sess.run(pixels, {encoded: contents})


def read_image_file(path):
  """uint8 [H, W, 3] RGB pixels of an image file, or ImageError naming it."""
  try:
    with open(path, 'rb') as f:
      contents = f.read()
  except (IOError, OSError) as e:
    raise ImageError('Cannot read image %s: %s' % (path, e.strerror or e))
  try:
    return _decode_bytes(contents)
  except (tf.errors.OpError, ValueError) as e:
    raise ImageError('%s is not a %s image that can be read (%s).' %
                     (path, FORMATS, one_line(e)))


def to_grey(pixels):
  """float32 [H, W] grey levels 0-255 of uint8 [H, W, 3] RGB pixels, with
  TensorFlow's weights (tf.image.rgb_to_grayscale)."""
  weights = np.array([0.2989, 0.5870, 0.1140], np.float32)
  grey = (np.asarray(pixels, np.float32) / np.float32(255.0)) @ weights
  # As rgb_to_grayscale converts back to uint8 (convert_image_dtype).
  return np.floor(grey * np.float32(255.5)).astype(np.float32)


def resize_for_cifar10(pixels):
  """float [N, H, W, 3] pixels 0-255 -> float32 [N, 32, 32, 3], 0-255.

  Antialiased bilinear interpolation, which averages when shrinking; a 32x32
  image is unchanged.
  """
  resized = tf.image.resize(tf.cast(pixels, tf.float32),
                            [CIFAR10_SIZE, CIFAR10_SIZE], method='bilinear',
                            antialias=True)
  return tf.clip_by_value(resized, 0.0, 255.0)


def encode_png(pixels):
  """PNG bytes of a uint8 HxW (grey) or HxWx3 (colour) array."""
  pixels = np.asarray(pixels, np.uint8)
  if pixels.ndim == 2:
    pixels = pixels[:, :, None]
  # A graph of its own, so that it works whether or not eager mode is on.
  with tf.Graph().as_default():
    with tf.compat.v1.Session() as sess:
      return sess.run(tf.io.encode_png(pixels))
