"""Command line of scripts/cifar10_to_folders.py."""
import os

from absl import flags

from image_retraining import cli

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
                       'Images per class (count; -1: all).')
  flags.DEFINE_integer('offset', 0, 'Skip this many images of each class '
                       'first (count).')
  flags.DEFINE_string('files', 'data_batch_1,data_batch_2,data_batch_3,'
                      'data_batch_4,data_batch_5', 'Batch files to read, '
                      'comma-separated names without .bin.')


def _main():
  from image_retraining import cifar10_folders  # pylint: disable=g-import-not-at-top
  classes = cifar10_folders.parse_classes(FLAGS.classes)
  paths = [os.path.join(FLAGS.data_dir, 'cifar-10-batches-bin', f + '.bin')
           for f in FLAGS.files.split(',') if f]
  written = cifar10_folders.write_folders(
      paths, FLAGS.output_dir, classes,
      None if FLAGS.per_class < 0 else FLAGS.per_class, FLAGS.offset)
  for name, count in written.items():
    print('%s: %d images' % (name, count))


main = cli.guarded(_main)


def run():
  """Entry point of `cifar10_to_folders`."""
  cli.run_app(define_flags, main)


if __name__ == '__main__':
  run()
