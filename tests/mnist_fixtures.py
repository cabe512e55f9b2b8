"""Small MNIST-format data sets of learnable synthetic digits."""
import gzip
import os

import numpy as np

from mnist_cnn import input_data


def _stroke(canvas, points, width=2):
  for y, x in points:
    canvas[max(0, y - width):y + width, max(0, x - width):x + width] = 255


def synthetic_digit(label, rng):
  """A 28x28 uint8 shape per class (ring, bars, diagonals...), jittered."""
  canvas = np.zeros((28, 28), np.uint8)
  dy, dx = rng.randint(-2, 3, 2)
  t = np.linspace(0, 1, 40)
  line = lambda y0, x0, y1, x1: [(int(y0 + (y1 - y0) * s + dy),
                                  int(x0 + (x1 - x0) * s + dx)) for s in t]
  shapes = {
      0: [(int(14 + 8 * np.sin(a) + dy), int(14 + 6 * np.cos(a) + dx))
          for a in np.linspace(0, 2 * np.pi, 60)],
      1: line(4, 14, 24, 14),
      2: line(14, 4, 14, 24),
      3: line(5, 5, 23, 23),
      4: line(5, 23, 23, 5),
      5: line(4, 14, 24, 14) + line(14, 4, 14, 24),
      6: line(5, 5, 23, 23) + line(5, 23, 23, 5),
      7: line(6, 6, 6, 22) + line(6, 22, 22, 10),
      8: line(8, 5, 8, 23) + line(20, 5, 20, 23),
      9: line(4, 8, 24, 8) + line(4, 20, 24, 20),
  }
  _stroke(canvas, shapes[int(label)])
  return canvas


def write_mnist(data_dir, num_train=2000, num_test=500, seed=0, gz=True):
  """Writes the four MNIST files of synthetic digits into data_dir."""
  rng = np.random.RandomState(seed)
  os.makedirs(str(data_dir), exist_ok=True)
  for prefix, count in (('train', num_train), ('t10k', num_test)):
    labels = rng.randint(0, 10, count).astype(np.uint8)
    pictures = np.stack([synthetic_digit(l, rng) for l in labels])
    for kind, array in (('images-idx3', pictures), ('labels-idx1', labels)):
      name = os.path.join(str(data_dir), '%s-%s-ubyte' % (prefix, kind))
      data = input_data.idx_bytes(array)
      if gz:
        with gzip.open(name + '.gz', 'wb') as f:
          f.write(data)
      else:
        with open(name, 'wb') as f:
          f.write(data)
  return str(data_dir)
