"""The one download helper of the data sets (CIFAR-10 and MNIST)."""
import hashlib
import os
import sys
import tempfile

from six.moves import urllib

from tutorials_common.errors import UsageError


class DownloadError(UsageError):
  """A download that failed or arrived corrupt."""


def file_md5(path):
  """The md5 (hex) of a file's bytes."""
  digest = hashlib.md5()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def download(url, path, md5=None, md5_of=file_md5, offline_hint='',
             error=DownloadError):
  """Downloads url to path, printing progress; returns path.

  The bytes go to a temporary name beside path, which becomes path only once
  complete and, given md5, once md5_of(file) equals it (md5_of: e.g. the md5
  of the decompressed bytes). Failures raise `error` (a UsageError type):
  offline, the message ends with offline_hint (what to put where instead);
  a wrong md5 removes the download. Prints the tutorial's log lines,
  '\\r>> Downloading <file> <percent>%' and 'Successfully downloaded <file>
  <bytes> bytes.'
  """
  folder, filename = os.path.split(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  handle, partial = tempfile.mkstemp(prefix='.%s.' % filename, suffix='.part',
                                     dir=folder)
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
      raise error('Could not download %s (%s).%s' %
                  (url, e, ' ' + offline_hint if offline_hint else ''))
    print()
    if md5:
      actual = md5_of(partial)
      if actual != md5:
        raise error('Downloaded %s has md5 %s, expected %s: the download is '
                    'corrupt.' % (url, actual, md5))
    os.rename(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)
  print('Successfully downloaded', filename, os.path.getsize(path), 'bytes.')
  return path
