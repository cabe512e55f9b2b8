"""Reads the four MNIST files (IDX format, gzipped or not), downloading them if absent.

IDX: a big-endian header (two zero bytes, a type byte 0x08 for unsigned
bytes, the number of dimensions), one 4-byte size per dimension, then the
data. Images are magic 2051 (0x00000803) with sizes N x 28 x 28; labels are
magic 2049 (0x00000801) with size N.
"""
import collections
import gzip
import hashlib
import math
import os
import zlib

import numpy as np

from tutorials_common import download as download_helper
from tutorials_common.errors import UsageError

SOURCE_URL = 'https://storage.googleapis.com/cvdf-datasets/mnist/'
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
IMAGE_SIZE = 28
NUM_CLASSES = 10

# File name -> md5 of its decompressed bytes (the same whichever mirror or
# compression it came from).
FILES = collections.OrderedDict([
    ('train-images-idx3-ubyte', '6bbc9ace898e44ae57da46a324031adb'),
    ('train-labels-idx1-ubyte', 'a25bea736e30d166cdddb491f175f624'),
    ('t10k-images-idx3-ubyte', '2646ac647ad5339dbf082846283269ea'),
    ('t10k-labels-idx1-ubyte', '27ae3e4e09519cfbb04c329615203637'),
])

DataSet = collections.namedtuple('DataSet', ['images', 'labels'])
Datasets = collections.namedtuple('Datasets', ['train', 'test'])


class MnistDataError(UsageError):
  """An MNIST file is missing, malformed, or could not be downloaded."""


def _read_bytes(path):
  """The file's bytes, decompressed if it is gzipped (whatever its name)."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
    return gzip.decompress(data) if data[:2] == b'\x1f\x8b' else data
  # A damaged gzip stream fails in gzip (OSError, EOFError when cut short)
  # or in zlib underneath (zlib.error, e.g. "invalid stored block lengths").
  except (OSError, EOFError, zlib.error) as e:
    raise MnistDataError('Cannot read MNIST file %s (%s): delete it and let '
                         'it download again.' % (path, e))


def parse_idx(data, path, magic):
  """Returns the uint8 array an IDX file holds, after checking its header."""
  ndim = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}[magic]
  header_size = 4 + 4 * ndim
  if len(data) < header_size:
    raise MnistDataError('MNIST file %s is truncated: %d bytes, shorter than '
                         'its header.' % (path, len(data)))
  found = int.from_bytes(data[:4], 'big')
  if found != magic:
    kind = 'image' if magic == IMAGES_MAGIC else 'label'
    raise MnistDataError('MNIST file %s has magic number %d, expected %d: it '
                         'is not an MNIST %s file.' % (path, found, magic, kind))
  shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
           for i in range(ndim)]
  # Python's integers: numpy's 64-bit product wraps (2**31 x 2**31 x 4 is 0),
  # which would let a bare header pass for a file of 2**64 pixels.
  expected = math.prod(shape) + header_size
  if len(data) != expected:
    raise MnistDataError(
        'MNIST file %s has %d bytes but its header (%s) says %d: the file is '
        'truncated or damaged; delete it and download it again.' %
        (path, len(data), ' x '.join(map(str, shape)), expected))
  return np.frombuffer(data, np.uint8, offset=header_size).reshape(shape)


def _find(data_dir, name):
  for candidate in (name + '.gz', name):
    path = os.path.join(data_dir, candidate)
    if os.path.exists(path):
      return path
  return None


def download(data_dir, name, source_url=SOURCE_URL):
  """Downloads name.gz into data_dir with progress, checking its md5."""
  filename = name + '.gz'
  return download_helper.download(
      source_url + filename, os.path.join(data_dir, filename), md5=FILES[name],
      md5_of=lambda path: hashlib.md5(_read_bytes(path)).hexdigest(),
      error=MnistDataError,
      offline_hint='Without internet access, put the four MNIST files (%s, '
      'gzipped or not) into %s and run again.' %
      (', '.join(f + '.gz' for f in FILES), data_dir))


def read_data_sets(data_dir, source_url=SOURCE_URL):
  """Loads MNIST from data_dir, downloading any file that is not there.

  Returns Datasets(train, test), each DataSet(images, labels): images float32
  [N, 784] in [0, 1], labels int64 [N].
  """
  if os.path.isfile(data_dir):
    raise MnistDataError(
        '--data_dir=%s is a file; point --data_dir at the folder that holds '
        'the four MNIST files: --data_dir=%s' % (data_dir,
                                                  os.path.dirname(data_dir)))
  arrays = {}
  for name in FILES:
    path = _find(data_dir, name) or download(data_dir, name, source_url)
    magic = IMAGES_MAGIC if 'images' in name else LABELS_MAGIC
    arrays[name] = (parse_idx(_read_bytes(path), path, magic), path)

  def _dataset(prefix):
    (images, images_path), (labels, labels_path) = (
        arrays[prefix + '-images-idx3-ubyte'],
        arrays[prefix + '-labels-idx1-ubyte'])
    if len(images) != len(labels):
      raise MnistDataError('%s holds %d images but %s holds %d labels.' %
                           (images_path, len(images), labels_path,
                            len(labels)))
    if not len(images):
      raise MnistDataError('%s holds no images.' % images_path)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
      raise MnistDataError('%s holds %s images, expected 28 x 28.' %
                           (images_path, ' x '.join(map(str, images.shape[1:]))))
    if labels.size and labels.max() >= NUM_CLASSES:
      raise MnistDataError('%s holds label %d; MNIST labels are 0-9.' %
                           (labels_path, labels.max()))
    return DataSet(images.reshape(len(images), -1).astype(np.float32) / 255.0,
                   labels.astype(np.int64))

  return Datasets(_dataset('train'), _dataset('t10k'))


def idx_bytes(array):
  """The IDX encoding of a uint8 array of 1 (labels) or 3 (images) dimensions."""
  array = np.asarray(array, np.uint8)
  magic = IMAGES_MAGIC if array.ndim == 3 else LABELS_MAGIC
  header = magic.to_bytes(4, 'big') + b''.join(
      d.to_bytes(4, 'big') for d in array.shape)
  return header + array.tobytes()
