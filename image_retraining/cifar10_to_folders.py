"""Writes CIFAR-10 binary records out as class folders of PNGs for retrain.py.

Run it (from this folder, from the repository root as
image_retraining/cifar10_to_folders.py, or as the console script
cifar10_to_folders):

  python image_retraining/cifar10_to_folders.py --data_dir /tmp/cifar10_data \
      --output_dir /tmp/c10_folders --classes dog,frog,horse,ship,truck \
      --per_class 500

Writes OUT/<class>/<batch file>_<record>.png, about a thousand images a
second.
"""
import os
import sys

if __package__ in (None, ''):
  # Run as a file: make the packages importable from the repo root.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cli_support import entry  # First: it quiets TensorFlow's start-up.
from absl import flags


FLAGS = flags.FLAGS


def define_flags():
  if 'output_dir' in FLAGS:
    return
  flags.DEFINE_string('data_dir', '/tmp/cifar10_data',
                      'Folder holding cifar-10-batches-bin/ (path).')
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


def main(argv):
  del argv  # Unused.
  from image_retraining import cifar10_folders  # pylint: disable=g-import-not-at-top
  classes = cifar10_folders.parse_classes(FLAGS.classes)
  paths = [os.path.join(FLAGS.data_dir, 'cifar-10-batches-bin', f + '.bin')
           for f in FLAGS.files.split(',') if f]
  written = cifar10_folders.write_folders(
      paths, FLAGS.output_dir, classes,
      None if FLAGS.per_class < 0 else FLAGS.per_class, FLAGS.offset)
  for name, count in written.items():
    print('%s: %d images' % (name, count))


def run():
  """Entry point of `cifar10_to_folders`."""
  entry.run(main, define_flags, graph_mode=False)


if __name__ == '__main__':
  run()
