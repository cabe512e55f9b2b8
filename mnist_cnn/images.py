"""Pictures in and out: any image file to an MNIST-like digit, and PNGs of results.

Decoding is tutorials_common.images' (the one decoder), made grey here;
numpy and TensorFlow only, so the core install stays tensorflow, numpy and
six.
"""
import numpy as np
import tensorflow.compat.v1 as tf

from tutorials_common import images

MNIST_SIZE = 28
DIGIT_BOX = 20  # MNIST digits fit a 20x20 box, centred by mass in 28x28.


ImageError = images.ImageError


def _run(build):
  """Runs a small TensorFlow computation in a graph of its own."""
  with tf.Graph().as_default(), tf.Session() as sess:
    return sess.run(build())


def decode_image_file(path):
  """Grey levels (float 0-255, HxW) of an image file (any format
  tutorials_common.images decodes, upright, up to its MAX_PIXELS), or
  ImageError naming it."""
  return images.to_grey(images.read_image_file(path))


def _resize(array, height, width):
  return _run(lambda: tf.image.resize(array[None, :, :, None].astype(
      np.float32), [height, width], method=tf.image.ResizeMethod.AREA))[0, :, :, 0]


def to_mnist(grey):
  """Makes a digit drawn on any background look like an MNIST image.

  Light-on-dark and dark-on-light drawings both become a white digit on
  black; the digit is cropped, scaled to fit 20x20 keeping its aspect, and
  centred by mass in 28x28, as MNIST's digits were. Returns float32 [784] in
  [0, 1].
  """
  try:
    grey = np.asarray(grey, np.float64)
  except (TypeError, ValueError) as e:
    raise ImageError('Expected a 2-D grey image of numbers: %s.' % e)
  if grey.ndim != 2 or min(grey.shape) < 1:
    raise ImageError('Expected a 2-D grey image, got shape %s.' %
                     (grey.shape,))
  if not np.isfinite(grey).all():
    raise ImageError('The image holds values that are not finite numbers '
                     '(NaN or infinity).')
  # Divide by the largest magnitude first: high - low of finite values near
  # the float limits would overflow to infinity and leave no ink at all.
  magnitude = np.abs(grey).max()
  if magnitude > 0:
    grey = grey / magnitude
  low, high = grey.min(), grey.max()
  if high - low < 1e-6:
    return np.zeros(MNIST_SIZE * MNIST_SIZE, np.float32)
  image = (grey - low) / (high - low)
  border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
  if np.median(border) > 0.5:  # A light background: make the ink the light.
    image = 1.0 - image
  rows = np.flatnonzero(image.max(axis=1) > 0.2)
  cols = np.flatnonzero(image.max(axis=0) > 0.2)
  image = image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
  scale = DIGIT_BOX / float(max(image.shape))
  height = max(1, int(round(image.shape[0] * scale)))
  width = max(1, int(round(image.shape[1] * scale)))
  digit = np.clip(_resize(image, height, width), 0, 1)
  total = digit.sum()
  centre_y = (digit.sum(axis=1) * np.arange(height)).sum() / total
  centre_x = (digit.sum(axis=0) * np.arange(width)).sum() / total
  top = int(round(MNIST_SIZE / 2.0 - 0.5 - centre_y))
  left = int(round(MNIST_SIZE / 2.0 - 0.5 - centre_x))
  top = min(max(top, 0), MNIST_SIZE - height)
  left = min(max(left, 0), MNIST_SIZE - width)
  out = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
  out[top:top + height, left:left + width] = digit
  return out.reshape(-1)


def _tile(maps, rows, cols, zoom, gap=1):
  """A grey grid of maps [H, W, N], each scaled to 0-255 on its own."""
  height, width, count = maps.shape
  grid = np.full((rows * (height * zoom + gap) + gap,
                  cols * (width * zoom + gap) + gap), 128, np.uint8)
  for i in range(count):
    m = maps[:, :, i]
    span = m.max() - m.min()
    scaled = (m - m.min()) / span if span > 0 else np.zeros_like(m)
    tile = np.kron((scaled * 255).astype(np.uint8),
                   np.ones((zoom, zoom), np.uint8))
    r, c = divmod(i, cols)
    top, left = gap + r * (height * zoom + gap), gap + c * (width * zoom + gap)
    grid[top:top + height * zoom, left:left + width * zoom] = tile
  return grid


def feature_map_grid(before, after, zoom=2):
  """The tutorial's 4x16 grid: conv1's 32 maps before (rows 1-2) and after
  (rows 3-4) bias + ReLU, for arrays of shape [28, 28, 32]."""
  return _tile(np.concatenate([before, after], axis=2), 4, 16, zoom)
