"""Finding the checkpoint to restore: the one lookup every command uses."""
import errno
import os
import re

import numpy as np
import tensorflow.compat.v1 as tf

from tutorials_common import files
from tutorials_common.errors import UsageError


class CheckpointError(UsageError):
  """No checkpoint where one was asked for, or not one of this model."""


def find_checkpoint(path):
  """The newest checkpoint in folder `path`, `path` itself when it is one
  checkpoint's prefix (/tmp/cifar10_train/model.ckpt-1000), else None."""
  if os.path.isdir(path):
    return tf.train.latest_checkpoint(path)
  # checkpoint_exists takes any existing file for an old-format checkpoint,
  # model.ckpt-100.index included: one file of a checkpoint is not one.
  if tf.train.checkpoint_exists(path) and not _checkpoint_prefix_of_file(path):
    return path
  return None


def _checkpoint_prefix_of_file(path):
  """The prefix of the checkpoint that file `path` is a part of, or None
  (model.ckpt-100.index, model.ckpt-100.data-00000-of-00001, .meta)."""
  match = re.match(r'^(.*)\.(index|meta|data-\d+-of-\d+)$', path)
  if match and tf.train.checkpoint_exists(match.group(1)):
    return match.group(1)
  return None


def _sub_folders_with_checkpoints(path):
  try:
    names = sorted(os.listdir(path))
  except OSError:
    return []
  return [os.path.join(path, name) for name in names
          if os.path.isfile(os.path.join(path, name, 'checkpoint')) and
          tf.train.latest_checkpoint(os.path.join(path, name))]


def require_checkpoint(path, flag='--checkpoint_dir', how_to_train=None):
  """find_checkpoint(path), or a CheckpointError that says what to do.

  how_to_train: the command line that writes checkpoints there, for the
  message (e.g. 'cifar10_train --train_dir=/tmp/cifar10_train'). A path one
  level off (one file of a checkpoint, or a folder whose sub-folder holds
  the checkpoints) gets the flag value to use instead.
  """
  found = find_checkpoint(path)
  if found:
    return found
  prefix = _checkpoint_prefix_of_file(path)
  if prefix:
    raise CheckpointError(
        '%s=%s is one file of the checkpoint %s: point %s at its folder, '
        '%s=%s, or at the checkpoint itself, %s=%s.' % (
            flag, path, prefix, flag, flag, os.path.dirname(prefix), flag,
            prefix))
  below = _sub_folders_with_checkpoints(path)
  if below:
    raise CheckpointError(
        'no checkpoint in %s itself, but in its sub-folder %s: use %s=%s.' % (
            path, ' and '.join(below), flag, below[0]))
  train = ' (%s)' % how_to_train if how_to_train else ''
  if not os.path.exists(path):
    raise CheckpointError(
        'checkpoint folder %s does not exist: train a model first%s, or point '
        '%s at the folder that holds its model.ckpt-* files.' %
        (path, train, flag))
  raise CheckpointError(
      'no checkpoint in %s: train a model first%s, or point %s at the folder '
      'that holds its model.ckpt-* files.' % (path, train, flag))


def non_finite_variables(checkpoint_path):
  """The names of checkpoint_path's float variables that hold a NaN or an
  infinity, sorted."""
  try:
    reader = tf.train.load_checkpoint(checkpoint_path)
  except (tf.errors.OpError, ValueError):
    return []  # Unreadable: the restore that follows says why.
  return sorted(name for name, dtype in
                reader.get_variable_to_dtype_map().items()
                if dtype.is_floating and
                not np.all(np.isfinite(reader.get_tensor(name))))


def require_finite(checkpoint_path, what='use it'):
  """Raises a CheckpointError naming the variables of checkpoint_path that
  are not finite (a model saved after it diverged), if any. what: the
  command's verb phrase for the message ('resume from it')."""
  bad = non_finite_variables(checkpoint_path)
  if bad:
    raise CheckpointError(
        'Cannot %s: %s holds values that are not finite (NaN or infinity) in '
        '%s, saved after the training diverged. Use an earlier checkpoint, '
        'or train again with --fresh.' % (
            what, checkpoint_path,
            ', '.join(bad[:3]) + (' and %d more' % (len(bad) - 3)
                                  if len(bad) > 3 else '')))


# The reasons freeing space mends (the others: a folder to make writable).
_NO_SPACE = tuple(os.strerror(number)
                  for number in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG))


def save_failed(error, checkpoint_dir):
  """The WriteError of a training run's failed write, or None.

  When error is a checkpoint (or summary, or graph) that could not be
  written for want of space or permission, removes what the write left
  unfinished in checkpoint_dir and returns one line naming what, where and
  why, and the checkpoint training resumes from once the cause is fixed
  (the checkpoint state still names it: TensorFlow updates that file only
  after a checkpoint is complete). Any other error: None.
  """
  failure = files.write_failure(error)
  if failure is None:
    return None
  path, reason = failure
  if path is None:
    path = os.path.join(checkpoint_dir, 'a file')
  folder, name = os.path.split(path)
  files.remove_unfinished(folder)
  of_checkpoint = re.match(r'^(.*ckpt-\d+)(\.index|\.meta|\.data-\d+-of-\d+)?$',
                           name)
  if of_checkpoint:
    prefix = os.path.join(folder, of_checkpoint.group(1))
    if not os.path.exists(prefix + '.index'):
      # Its shards already in place when the index failed: not a
      # checkpoint, only space taken.
      for part in tf.io.gfile.glob(prefix + '.data-*') + [prefix + '.meta']:
        if os.path.exists(part):
          os.remove(part)
      name = 'checkpoint ' + of_checkpoint.group(1)
  fix = ('free some space' if reason in _NO_SPACE else
         'make %s writable' % folder)
  latest = find_checkpoint(checkpoint_dir)
  if latest:
    then = ('%s, the last checkpoint, is intact: %s, then run the same '
            'command to resume from it.' % (latest, fix))
  else:
    then = 'No checkpoint was saved yet: %s, then run the command again.' % fix
  return files.WriteError('cannot write %s in %s: %s. %s' % (
      name, folder, reason, then))
