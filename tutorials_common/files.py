"""Files a command writes for the user, whole or not at all.

Everything a command leaves behind (a chart, a cached bottleneck, a
download, an export's files) is written under a temporary name in the same
folder and renamed once complete, so a full disk, a read-only folder or a
kill half-way leaves the previous file (or nothing), never half of one.
"""
import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile

from tutorials_common.errors import CommandError

# Errors of writing bytes down (the disk, not the data): no space left, a
# read-only folder, no permission, a quota, a file past the size limit.
WRITE_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT,
                errno.EFBIG)
_WRITE_REASONS = '|'.join(re.escape(os.strerror(number))
                          for number in WRITE_ERRNOS)
# How TensorFlow's file system reports one: 'PATH; REASON' inside the
# error's message (ResourceExhaustedError for a full disk,
# PermissionDeniedError for a read-only folder).
_TF_WRITE_FAILURE = re.compile(r'(/[^;\n]*); (%s)' % _WRITE_REASONS)
# TensorFlow's temporary names, renamed once complete: a checkpoint's
# 'model.ckpt-1_temp' folder of '.tempstate123' parts, write_graph's
# 'graph.pbtxt.tmp<32 hex digits>'.
_TEMPORARY_NAME = re.compile(
    r'(_temp(_[0-9a-f]{32})?|\.tempstate-?\d+|\.tmp[0-9a-f]{32})$')


class WriteError(CommandError):
  """A file that could not be written: its folder and the reason."""


def _reason(error):
  return error.strerror or errno.errorcode.get(error.errno, '') or str(error)


def cannot_write(path, error):
  """The WriteError of an OSError met writing path: one line, folder and reason."""
  folder = os.path.dirname(os.path.abspath(path))
  return WriteError('cannot write %s in %s: %s.' % (
      os.path.basename(path), folder, _reason(error)))


def write_failure(error):
  """(path, reason) when error is a file that could not be written for want
  of space or permission (an OSError, or a TensorFlow error quoting one);
  else None. path is the file the user would see (None when the error does
  not say): TensorFlow's temporary name ('model.ckpt-1_temp/part-0.tempstate9')
  becomes the name it was to have ('model.ckpt-1')."""
  if isinstance(error, OSError):
    if error.errno not in WRITE_ERRNOS:
      return None
    if not error.filename:  # A write() to an open file: no path known.
      return None, _reason(error)
    path, reason = str(error.filename), _reason(error)
  else:
    match = _TF_WRITE_FAILURE.search(
        getattr(error, 'message', None) or str(error))
    if match is None:
      return None
    path, reason = match.groups()
  parts = os.path.abspath(path).split(os.sep)
  for i, part in enumerate(parts):
    if _TEMPORARY_NAME.search(part):
      parts = parts[:i] + [_TEMPORARY_NAME.sub('', part)]
      break
  return os.sep.join(parts), reason


def unfinished_names(folder):
  """The names of what TensorFlow left half-written in folder: its temporary
  files, and its temporary folders of a checkpoint's 'part-*' shards (not a
  user's folder that happens to end in '_temp')."""
  try:
    names = sorted(os.listdir(folder))
  except OSError:
    return []
  unfinished = []
  for name in names:
    if not _TEMPORARY_NAME.search(name):
      continue
    path = os.path.join(folder, name)
    if os.path.isdir(path) and not os.path.islink(path):
      try:
        inside = os.listdir(path)
      except OSError:
        continue
      if not all(part.startswith('part-') for part in inside):
        continue
    unfinished.append(name)
  return unfinished


def remove_unfinished(folder):
  """Removes what TensorFlow left half-written in folder (unfinished_names);
  returns their names."""
  removed = []
  for name in unfinished_names(folder):
    path = os.path.join(folder, name)
    try:
      if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
      else:
        os.remove(path)
    except OSError:
      continue
    removed.append(name)
  return removed


def as_write_error(error):
  """The WriteError of error when it is a failed write (see write_failure),
  with TensorFlow's unfinished files beside it removed; else None."""
  failure = write_failure(error)
  if failure is None:
    return None
  path, reason = failure
  if path is None:
    return WriteError('cannot write a file: %s.' % reason)
  remove_unfinished(os.path.dirname(path))
  return WriteError('cannot write %s in %s: %s.' % (
      os.path.basename(path), os.path.dirname(path), reason))


def file_digest(path, algorithm='sha256'):
  """The hex digest of a file's bytes (hashlib's algorithm name), read a
  megabyte at a time."""
  digest = hashlib.new(algorithm)
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _umask():
  """The process's umask, read without changing it where Linux tells it
  (os.umask can only be read by setting it, which other threads would see)."""
  try:
    with open('/proc/self/status') as status:
      for line in status:
        if line.startswith('Umask:'):
          return int(line.split()[1], 8)
  except (OSError, ValueError):
    pass
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def write_atomically(path, data, durable=True):
  """Writes data (bytes or str) to path under a temporary name, then renames.

  On any failure (no space left, read-only folder, ...) the temporary file
  is removed, path keeps what it held before, and a WriteError names the
  folder and the reason. durable: flush the bytes to the disk before the
  rename, so a power cut cannot leave an empty file under the final name;
  a cache whose reader checks each file can skip that wait.
  """
  folder = os.path.dirname(os.path.abspath(path))
  mode = 'w' if isinstance(data, str) else 'wb'
  partial = None
  try:
    handle, partial = tempfile.mkstemp(
        prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=folder)
    # mkstemp makes the file private; the user's file gets the mode any new
    # file of theirs gets, as the checkpoints and exports beside it do.
    os.fchmod(handle, 0o666 & ~_umask())
    with os.fdopen(handle, mode) as f:
      f.write(data)
      if durable:
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
    partial = None
  except OSError as e:
    raise cannot_write(path, e) from None
  finally:
    if partial is not None and os.path.exists(partial):
      os.remove(partial)
  return path


@contextlib.contextmanager
def staged_folder(target, what=''):
  """Yields a new folder to fill; renames it to target once the block ends.

  The folder is made beside target, so the rename is atomic. A target that
  exists (empty, or replaced on purpose) is swapped out only once the new
  one is complete. A write that fails for want of space or permission
  removes the new folder and raises a WriteError naming target's folder and
  the reason; target keeps what it held. what: words before the name in
  that message ('the export').
  """
  target = os.path.abspath(target)
  parent = os.path.dirname(target)
  try:
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(
        prefix='.%s.partial-' % os.path.basename(target), dir=parent)
  except OSError as e:
    raise cannot_write(target, e) from None
  name = ' '.join(filter(None, [what, os.path.basename(target)]))
  existed = os.path.lexists(target)
  new = os.path.join(staging, 'new')
  try:
    yield new
    if os.path.lexists(target):
      old = os.path.join(staging, 'old')
      os.rename(target, old)
      try:
        os.rename(new, target)
      except OSError:
        os.rename(old, target)
        raise
    else:
      os.rename(new, target)
  except Exception as e:  # pylint: disable=broad-except
    failure = write_failure(e)
    if failure is None:
      raise
    kept = ' %s is as it was.' % target if existed else ''
    raise WriteError('cannot write %s in %s: %s.%s' % (
        name, parent, failure[1], kept)) from None
  finally:
    shutil.rmtree(staging, ignore_errors=True)
