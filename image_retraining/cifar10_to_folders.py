"""Writes CIFAR-10 binary records out as class folders of PNGs for retrain.py.

Run it (from this folder, from the repository root as
image_retraining/cifar10_to_folders.py, or as the console script
cifar10_to_folders):

  python image_retraining/cifar10_to_folders.py --data_dir /tmp/cifar10_data \
      --output_dir /tmp/c10_folders --classes dog,frog,horse,ship,truck \
      --per_class 500

Writes OUT/<class>/<batch file>_<record>.png. The records are read and
checked by cifar10.cifar10_input; `filter_batches` (used by
scripts/retrain_real_data.py) copies batch files keeping chosen classes.
"""
import os
import sys

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('image_retraining.cifar10_to_folders'))

from absl import flags
import numpy as np
import tensorflow as tf

from cifar10.cifar10_input import BATCHES_DIR
from cifar10.cifar10_input import CLASS_NAMES
from cifar10.cifar10_input import read_records
from cifar10.cifar10_input import record_images
from cli_support import entry
from image_retraining.errors import RetrainError

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('data_dir', '/tmp/cifar10_data',
                      'Folder holding %s/ (path).' % BATCHES_DIR)
  flags.DEFINE_string('output_dir', '/tmp/cifar10_folders',
                      'Where the class folders of PNGs go (path).')
  flags.DEFINE_string('classes', 'dog,frog,horse,ship,truck',
                      'Classes to write: names or indices 0-9, comma-separated.')
  flags.DEFINE_integer('per_class', 100,
                       'Images per class (count; -1: all).', lower_bound=-1)
  flags.DEFINE_integer('offset', 0, 'Skip this many images of each class '
                       'first (count).', lower_bound=0)
  flags.DEFINE_string('files', 'data_batch_1,data_batch_2,data_batch_3,'
                      'data_batch_4,data_batch_5', 'Batch files to read, '
                      'comma-separated names without .bin.')


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


def main(argv):
  del argv  # Unused.
  classes = parse_classes(FLAGS.classes)
  paths = [os.path.join(FLAGS.data_dir, BATCHES_DIR, f + '.bin')
           for f in FLAGS.files.split(',') if f]
  written = write_folders(
      paths, FLAGS.output_dir, classes,
      None if FLAGS.per_class < 0 else FLAGS.per_class, FLAGS.offset)
  for name, count in written.items():
    print('%s: %d images' % (name, count))


def run():
  """Entry point of `cifar10_to_folders`."""
  entry.run(main, define_flags, graph_mode=False)

