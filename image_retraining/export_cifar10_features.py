"""Exports a trained CIFAR-10 checkpoint as a feature extractor for retraining.

Run it (from this folder, from the repository root as
image_retraining/export_cifar10_features.py, or as the console script
export_cifar10_features):

  python cifar10/cifar10_train.py --train_dir /tmp/c10 --max_steps 3000
  python image_retraining/export_cifar10_features.py --checkpoint_dir /tmp/c10 \
      --export_dir /tmp/c10_features
  python image_retraining/retrain.py --tfhub_module /tmp/c10_features --image_dir ...

A thin front of cifar10_export: it writes the same SavedModel (no TensorFlow
Lite files), whose `feature_vector` signature maps float images in [0, 1] of
any size to the 192-wide `local4` activations, with the moving averages of
the weights and exactly the preprocessing of cifar10_predict and
cifar10_export (resized to 32x32, centre-cropped to 24x24, standardised).
`cifar10_export --export_dir=DIR` makes an export retrain takes just as well.
"""
import os
import sys

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('image_retraining.export_cifar10_features'))

from absl import flags
from absl import logging
import tensorflow.compat.v1 as tf

from cifar10 import cifar10_export
from cifar10 import trained_model
from cli_support import entry
from image_retraining.errors import RetrainError

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('checkpoint_dir', '/tmp/cifar10_train',
                      'CIFAR-10 train dir (its latest checkpoint is used) or '
                      'a checkpoint path prefix (path).')
  flags.DEFINE_string('export_dir', '/tmp/cifar10_features',
                      'New directory for the feature-vector SavedModel (path).')


def export(checkpoint_dir, export_dir):
  """Exports the latest checkpoint of checkpoint_dir (or a checkpoint path)
  with cifar10_export into export_dir (new or empty); returns the checkpoint."""
  if os.path.exists(export_dir) and os.listdir(export_dir):
    raise RetrainError("Export directory '%s' exists and is not empty." %
                       export_dir)
  checkpoint = trained_model.require_checkpoint(checkpoint_dir)
  names, _ = trained_model.class_names(None)
  cifar10_export.export(checkpoint, export_dir, names)
  return checkpoint


def main(argv):
  del argv  # Unused.
  tf.get_logger().setLevel('ERROR')
  logging.set_verbosity(logging.WARNING)
  checkpoint = export(FLAGS.checkpoint_dir, FLAGS.export_dir)
  print('Exported %s as an image feature-vector SavedModel (%d features) to '
        '%s' % (checkpoint, trained_model.FEATURES, FLAGS.export_dir))


def run():
  """Entry point of `export_cifar10_features`."""
  entry.run(main, define_flags, graph_mode=False)

