"""Finding the checkpoint to restore: the one lookup every command uses."""
import os

import tensorflow.compat.v1 as tf

from tutorials_common.errors import UsageError


class CheckpointError(UsageError):
  """No checkpoint where one was asked for, or not one of this model."""


def find_checkpoint(path):
  """The newest checkpoint in folder `path`, `path` itself when it is one
  checkpoint's prefix (/tmp/cifar10_train/model.ckpt-1000), else None."""
  if os.path.isdir(path):
    return tf.train.latest_checkpoint(path)
  if tf.train.checkpoint_exists(path):
    return path
  return None


def require_checkpoint(path, flag='--checkpoint_dir', how_to_train=None):
  """find_checkpoint(path), or a CheckpointError that says what to do.

  how_to_train: the command line that writes checkpoints there, for the
  message (e.g. 'cifar10_train --train_dir=/tmp/cifar10_train').
  """
  found = find_checkpoint(path)
  if found:
    return found
  train = ' (%s)' % how_to_train if how_to_train else ''
  if not os.path.exists(path):
    raise CheckpointError(
        'checkpoint folder %s does not exist: train a model first%s, or point '
        '%s at the folder that holds its model.ckpt-* files.' %
        (path, train, flag))
  raise CheckpointError(
      'no checkpoint in %s: train a model first%s, or point %s at the folder '
      'that holds its model.ckpt-* files.' % (path, train, flag))
