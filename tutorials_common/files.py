"""Files a command writes for the user, whole or not at all.

Everything a command leaves behind (a chart, a cached bottleneck, a
download, an export's files) is written under a temporary name in the same
folder and renamed once complete, so a full disk, a read-only folder or a
kill half-way leaves the previous file (or nothing), never half of one.
"""
import errno
import os
import tempfile

from tutorials_common.errors import CommandError


class WriteError(CommandError):
  """A file that could not be written: its folder and the reason."""


def _reason(error):
  return error.strerror or errno.errorcode.get(error.errno, '') or str(error)


def write_error(path, error):
  """The WriteError of an OSError met writing path: one line, folder and reason."""
  folder = os.path.dirname(os.path.abspath(path))
  return WriteError('cannot write %s in %s: %s.' % (
      os.path.basename(path), folder, _reason(error)))


def write_atomically(path, data):
  """Writes data (bytes or str) to path under a temporary name, then renames.

  On any failure (no space left, read-only folder, ...) the temporary file
  is removed, path keeps what it held before, and a WriteError names the
  folder and the reason.
  """
  folder = os.path.dirname(os.path.abspath(path))
  mode = 'w' if isinstance(data, str) else 'wb'
  partial = None
  try:
    handle, partial = tempfile.mkstemp(
        prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=folder)
    with os.fdopen(handle, mode) as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(partial, path)
    partial = None
  except OSError as e:
    raise write_error(path, e) from None
  finally:
    if partial is not None and os.path.exists(partial):
      os.remove(partial)
  return path
