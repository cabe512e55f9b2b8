"""Exports a trained CIFAR-10 checkpoint as a feature extractor for retraining.

Run it (from this folder, from the repository root as
image_retraining/export_cifar10_features.py, or as the console script
export_cifar10_features):

  python cifar10/cifar10_train.py --train_dir /tmp/c10 --max_steps 3000
  python image_retraining/export_cifar10_features.py --checkpoint_dir /tmp/c10 \
      --export_dir /tmp/c10_features
  python image_retraining/retrain.py --tfhub_module /tmp/c10_features --image_dir ...

The SavedModel maps float images in [0, 1] (any size; resized to 32x32 and
centre-cropped to 24x24, per-image standardised) to the 192-wide `local4`
activations, using the moving-average weights. Export takes a few seconds.
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
  if 'checkpoint_dir' in FLAGS:
    return
  flags.DEFINE_string('checkpoint_dir', '/tmp/cifar10_train',
                      'CIFAR-10 train dir (its latest checkpoint is used) or '
                      'a checkpoint path prefix (path).')
  flags.DEFINE_string('export_dir', '/tmp/cifar10_features',
                      'New directory for the feature-vector SavedModel (path).')


def main(argv):
  del argv  # Unused.
  from image_retraining import cifar10_features  # pylint: disable=g-import-not-at-top
  checkpoint = cifar10_features.export(FLAGS.checkpoint_dir, FLAGS.export_dir)
  print('Exported %s as an image feature-vector SavedModel (192 features) to '
        '%s' % (checkpoint, FLAGS.export_dir))


def run():
  """Entry point of `export_cifar10_features`."""
  entry.run(main, define_flags, graph_mode=False)


if __name__ == '__main__':
  run()
