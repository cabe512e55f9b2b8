"""CIFAR-10 binary records -> class folders of PNGs, and class filtering.

The records are read and checked by cifar10.cifar10_input.
"""
import os

import numpy as np

from cifar10.cifar10_input import CLASS_NAMES
from cifar10.cifar10_input import read_records
from cifar10.cifar10_input import record_images
from image_retraining.errors import RetrainError


def parse_classes(spec):
  """'dog,frog' or '5,6' -> sorted class indices."""
  out = []
  for item in [s.strip() for s in spec.split(',') if s.strip()]:
    if item.isdigit() and int(item) < 10:
      out.append(int(item))
    elif item.lower() in CLASS_NAMES:
      out.append(CLASS_NAMES.index(item.lower()))
    else:
      raise RetrainError("Unknown CIFAR-10 class '%s' (use 0-9 or one of %s)." %
                         (item, ', '.join(CLASS_NAMES)))
  if not out:
    raise RetrainError('No CIFAR-10 classes selected.')
  return sorted(set(out))


def write_folders(paths, output_dir, classes, per_class=None, offset=0):
  """Writes images of `classes` as output_dir/<class name>/<file>_<i>.png.

  Takes, per class, records number offset..offset+per_class (all when None)
  in file order. Returns {class name: count}.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  seen = {c: 0 for c in classes}
  written = {CLASS_NAMES[c]: 0 for c in classes}
  for path in paths:
    stem = os.path.splitext(os.path.basename(path))[0]
    records = read_records(path)
    for index, (record, image) in enumerate(zip(records,
                                                record_images(records))):
      label = int(record[0])
      if label not in seen:
        continue
      seen[label] += 1
      if seen[label] <= offset:
        continue
      name = CLASS_NAMES[label]
      if per_class is not None and written[name] >= per_class:
        continue
      folder = os.path.join(output_dir, name)
      os.makedirs(folder, exist_ok=True)
      with open(os.path.join(folder, '%s_%05d.png' % (stem, index)),
                'wb') as f:
        f.write(tf.io.encode_png(image).numpy())
      written[name] += 1
  return written


def filter_batches(src_dir, dst_dir, classes):
  """Copies CIFAR batch files keeping only records whose label is in classes."""
  os.makedirs(dst_dir, exist_ok=True)
  counts = {}
  for name in sorted(os.listdir(src_dir)):
    if not name.endswith('.bin') or name == 'batches.meta.bin':
      continue
    records = read_records(os.path.join(src_dir, name))
    keep = records[np.isin(records[:, 0], classes)]
    keep.tofile(os.path.join(dst_dir, name))
    counts[name] = len(keep)
  return counts
