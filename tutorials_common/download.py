"""The one download helper of the data sets (CIFAR-10 and MNIST)."""
import errno
import os
import stat
import sys
import tempfile

from six.moves import urllib

from tutorials_common import files
from tutorials_common.errors import UsageError


class DownloadError(UsageError):
  """A download that failed or arrived corrupt."""


def file_md5(path):
  """The md5 (hex) of a file's bytes."""
  return files.file_digest(path, 'md5')


SYMLINK_LOOP = ('a symlink loop (a link that leads back to itself, directly '
                'or through other links)')


def what_blocks(path, folder=False):
  """(name, words) for the first name on path, from the root down, that
  keeps it from being reached: a symlink loop, a link to a place that does
  not exist, or something other than a folder where a folder belongs (every
  name but the last; the last too with folder=True). None when nothing does:
  path is then missing, or there (as a file or a folder).

  The words follow the name: '/data/x is a symlink loop ...'.
  """
  parts = os.path.abspath(path).split(os.sep)
  for i in range(2, len(parts) + 1):
    name = os.sep.join(parts[:i])
    try:
      mode = os.stat(name).st_mode
    except OSError as e:
      if e.errno == errno.ELOOP:
        return name, 'is ' + SYMLINK_LOOP
      if os.path.islink(name):
        try:
          target = os.readlink(name)
        except OSError:  # Gone meanwhile.
          return None
        return name, 'is a link to %s, which does not exist' % target
      return None  # Missing from here on (or not ours to look into).
    if not stat.S_ISDIR(mode) and (i < len(parts) or folder):
      kind = 'a file' if stat.S_ISREG(mode) else 'not a folder'
      return name, 'is %s, where a folder belongs' % kind
  return None


def make_folders(folder):
  """Makes folder and its missing parents; returns those it made, deepest first."""
  missing, parent = [], os.path.abspath(folder)
  while not os.path.isdir(parent):
    missing.append(parent)
    parent = os.path.dirname(parent)
  os.makedirs(folder, exist_ok=True)
  return missing


def remove_empty(folders):
  """Removes the folders (deepest first) that are still empty."""
  for folder in folders:
    try:
      os.rmdir(folder)
    except OSError:  # Not empty (or gone): leave it and what holds it.
      break


def download(url, path, md5=None, md5_of=file_md5, offline_hint='',
             error=DownloadError):
  """Downloads url to path, printing progress; returns path.

  The bytes go to a temporary name beside path, which becomes path only once
  complete and, given md5, once md5_of(file) equals it (md5_of: e.g. the md5
  of the decompressed bytes). Failures raise `error` (a UsageError type):
  offline, the message ends with offline_hint (what to put where instead);
  a wrong md5 removes the download; folders it made for a download that
  failed are removed again, so a mistyped path is not left as an empty
  folder. Prints the tutorial's log lines,
  '\\r>> Downloading <file> <percent>%' and 'Successfully downloaded <file>
  <bytes> bytes.'
  """
  folder, filename = os.path.split(os.path.abspath(path))
  created = []
  try:
    created = make_folders(folder)
    handle, partial = tempfile.mkstemp(prefix='.%s.' % filename,
                                       suffix='.part', dir=folder)
  except OSError as e:
    remove_empty(created)
    blocked = what_blocks(folder, folder=True)
    reason = ('%s %s' % blocked if blocked else e.strerror or e)
    raise error('Cannot write the download %s into %s: %s.' %
                (filename, folder, reason)) from None
  os.close(handle)

  def _progress(count, block_size, total_size):
    if total_size > 0:
      sys.stdout.write('\r>> Downloading %s %.1f%%' % (
          filename, min(100.0, 100.0 * count * block_size / total_size)))
      sys.stdout.flush()

  try:
    try:
      urllib.request.urlretrieve(url, partial, _progress)
    except (IOError, OSError) as e:  # URLError and socket errors are OSErrors.
      if getattr(e, 'errno', None) in files.WRITE_ERRNOS:
        raise  # Not the network: the disk, said below.
      raise error('Could not download %s (%s).%s' %
                  (url, e, ' ' + offline_hint if offline_hint else ''))
    print()
    if md5:
      actual = md5_of(partial)
      if actual != md5:
        raise error('Downloaded %s has md5 %s, expected %s: the download is '
                    'corrupt.' % (url, actual, md5))
    os.rename(partial, path)
  except (IOError, OSError) as e:  # No space left, a read-only folder, ...
    raise error('Cannot write the download %s into %s: %s.' %
                (filename, folder, e.strerror or e)) from None
  finally:
    if os.path.exists(partial):
      os.remove(partial)
    if not os.path.exists(path):
      # Nothing arrived: leave no folder this call made and did not fill.
      remove_empty(created)
  print('Successfully downloaded', filename, os.path.getsize(path), 'bytes.')
  return path
