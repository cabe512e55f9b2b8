"""Command line of scripts/export_cifar10_features.py."""

from absl import flags

from image_retraining import cli

FLAGS = flags.FLAGS


def define_flags():
  if 'checkpoint_dir' in FLAGS:
    return
  flags.DEFINE_string('checkpoint_dir', '/tmp/cifar10_train',
                      'CIFAR-10 train dir (its latest checkpoint is used) or '
                      'a checkpoint path prefix (path).')
  flags.DEFINE_string('export_dir', '/tmp/cifar10_features',
                      'New directory for the feature-vector SavedModel (path).')


def _main():
  from image_retraining import cifar10_features  # pylint: disable=g-import-not-at-top
  checkpoint = cifar10_features.export(FLAGS.checkpoint_dir, FLAGS.export_dir)
  print('Exported %s as an image feature-vector SavedModel (192 features) to '
        '%s' % (checkpoint, FLAGS.export_dir))


main = cli.guarded(_main)


def run():
  """Entry point of `export_cifar10_features`."""
  cli.run_app(define_flags, main)


if __name__ == '__main__':
  run()
