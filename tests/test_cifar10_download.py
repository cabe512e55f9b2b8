"""maybe_download_and_extract against a local HTTP server and local archives."""
import functools
import hashlib
import http.server
import io
import os
import socket
import stat
import tarfile
import threading

import pytest

from cifar10 import cifar10_input
from tutorials_common import download


def _archive_bytes(members):
  """A .tar.gz holding {name: bytes}; a value of None makes a symlink."""
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
    for name, data in members.items():
      info = tarfile.TarInfo(name)
      if data is None:
        info.type = tarfile.SYMTYPE
        info.linkname = '/etc/passwd'
        tar.addfile(info)
      else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
  return buffer.getvalue()


GOOD_ARCHIVE = _archive_bytes({
    'cifar-10-batches-bin/data_batch_1.bin': b'\x01' * 3073,
    'cifar-10-batches-bin/batches.meta.txt': b'airplane\n',
})
GOOD_MD5 = hashlib.md5(GOOD_ARCHIVE).hexdigest()


@pytest.fixture
def http_root(tmp_path):
  """Serves tmp_path/www on 127.0.0.1; yields (folder, base URL)."""
  www = tmp_path / 'www'
  www.mkdir()
  handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                              directory=str(www))
  handler.log_message = lambda *args: None
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield www, 'http://127.0.0.1:%d/' % server.server_address[1]
  finally:
    server.shutdown()
    server.server_close()


def test_downloads_checks_md5_and_extracts(http_root, tmp_path, capsys):
  www, base = http_root
  (www / 'cifar-10-binary.tar.gz').write_bytes(GOOD_ARCHIVE)
  data_dir = tmp_path / 'data'
  batches = cifar10_input.maybe_download_and_extract(
      str(data_dir), url=base + 'cifar-10-binary.tar.gz', md5=GOOD_MD5)
  assert batches == str(data_dir / 'cifar-10-batches-bin')
  assert (data_dir / 'cifar-10-batches-bin' / 'data_batch_1.bin').read_bytes() \
      == b'\x01' * 3073
  out = capsys.readouterr().out
  assert '>> Downloading cifar-10-binary.tar.gz 100.0%' in out
  assert 'Successfully downloaded cifar-10-binary.tar.gz %d bytes.' % len(
      GOOD_ARCHIVE) in out
  assert not os.path.exists(str(data_dir / 'cifar-10-binary.tar.gz.part'))


def test_rejects_a_corrupt_download(http_root, tmp_path):
  www, base = http_root
  (www / 'cifar-10-binary.tar.gz').write_bytes(GOOD_ARCHIVE[:-10] + b'0' * 10)
  data_dir = tmp_path / 'data'
  with pytest.raises(cifar10_input.CifarDataError, match='md5'):
    cifar10_input.maybe_download_and_extract(
        str(data_dir), url=base + 'cifar-10-binary.tar.gz', md5=GOOD_MD5)
  assert not (data_dir / 'cifar-10-batches-bin').exists()


def _closed_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_offline_says_where_to_put_the_archive(tmp_path):
  data_dir = tmp_path / 'typo' / 'data'
  url = 'http://127.0.0.1:%d/cifar-10-binary.tar.gz' % _closed_port()
  with pytest.raises(cifar10_input.CifarDataError) as error:
    cifar10_input.maybe_download_and_extract(str(data_dir), url=url)
  message = str(error.value)
  assert 'Could not download' in message
  assert str(data_dir / 'cifar-10-binary.tar.gz') in message
  # No partial file, and neither folder the download made, is left behind.
  assert os.listdir(str(tmp_path)) == []


def test_uses_an_archive_put_there_by_hand(tmp_path):
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  (data_dir / 'cifar-10-binary.tar.gz').write_bytes(GOOD_ARCHIVE)
  url = 'http://127.0.0.1:%d/cifar-10-binary.tar.gz' % _closed_port()
  cifar10_input.maybe_download_and_extract(str(data_dir), url=url, md5=GOOD_MD5)
  assert (data_dir / 'cifar-10-batches-bin' / 'batches.meta.txt').exists()


def test_does_not_touch_an_extracted_folder(tmp_path):
  batches = tmp_path / 'cifar-10-batches-bin'
  batches.mkdir()
  (batches / 'data_batch_1.bin').write_bytes(b'in use by a trainer')
  cifar10_input.maybe_download_and_extract(str(tmp_path), url='http://x.invalid/a')
  assert (batches / 'data_batch_1.bin').read_bytes() == b'in use by a trainer'


@pytest.mark.parametrize('members', [
    {'cifar-10-batches-bin/../../escaped.bin': b'x'},
    {'/tmp/absolute-escape.bin': b'x'},
    {'cifar-10-batches-bin/link': None},
])
def test_refuses_archives_that_write_outside_the_folder(tmp_path, members):
  data_dir = tmp_path / 'a' / 'data'
  data_dir.mkdir(parents=True)
  archive = _archive_bytes(members)
  (data_dir / 'cifar-10-binary.tar.gz').write_bytes(archive)
  with pytest.raises(cifar10_input.CifarDataError, match='Refusing to extract'):
    cifar10_input.maybe_download_and_extract(
        str(data_dir), md5=hashlib.md5(archive).hexdigest())
  assert not (tmp_path / 'escaped.bin').exists()
  assert not os.path.exists('/tmp/absolute-escape.bin')
  assert not (data_dir / 'cifar-10-batches-bin').exists()


def test_the_inner_batches_folder_as_data_dir_says_to_use_its_parent(tmp_path):
  batches = tmp_path / 'data' / 'cifar-10-batches-bin'
  batches.mkdir(parents=True)
  (batches / 'data_batch_1.bin').write_bytes(b'\x01' * 3073)
  for data_dir in (batches, tmp_path / 'data' / 'cifar-10-batches-bin' / ''):
    with pytest.raises(cifar10_input.CifarDataError) as raised:
      cifar10_input.maybe_download_and_extract(str(data_dir))
    assert str(raised.value) == (
        '--data_dir=%s is the cifar-10-batches-bin folder itself; point '
        '--data_dir at the folder that holds it: --data_dir=%s'
        % (data_dir, tmp_path / 'data'))
  with pytest.raises(cifar10_input.CifarDataError, match='use|point'):
    cifar10_input.data_files(str(batches))
  # A file as --data_dir is named as one.
  with pytest.raises(cifar10_input.CifarDataError,
                     match='is a file; point --data_dir at the folder'):
    cifar10_input.maybe_download_and_extract(str(batches / 'data_batch_1.bin'))
  assert sorted(os.listdir(str(batches))) == ['data_batch_1.bin']


def test_an_extraction_that_fails_leaves_no_half_folder(tmp_path, monkeypatch):
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  (data_dir / 'cifar-10-binary.tar.gz').write_bytes(GOOD_ARCHIVE)
  real_extract = tarfile.TarFile.extractall

  def fill_the_disk(self, path, members=None, **kwargs):
    real_extract(self, path, members=members[:1], **kwargs)
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(tarfile.TarFile, 'extractall', fill_the_disk)
  with pytest.raises(cifar10_input.CifarDataError) as raised:
    cifar10_input.maybe_download_and_extract(str(data_dir), md5=GOOD_MD5)
  assert str(raised.value) == (
      'Cannot extract %s into %s: No space left on device.'
      % (data_dir / 'cifar-10-binary.tar.gz', data_dir))
  assert os.listdir(str(data_dir)) == ['cifar-10-binary.tar.gz']
  monkeypatch.undo()
  cifar10_input.maybe_download_and_extract(str(data_dir), md5=GOOD_MD5)
  assert (data_dir / 'cifar-10-batches-bin' / 'batches.meta.txt').exists()


def _owned_archive(uname):
  """A CIFAR-10 archive whose folder and files carry another owner and the
  setuid, setgid and sticky bits (with group and other write)."""
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
    for name, data, mode in [('cifar-10-batches-bin', None, 0o7777),
                             ('cifar-10-batches-bin/data_batch_1.bin',
                              b'\x01' * 3073, 0o6777),
                             ('cifar-10-batches-bin/batches.meta.txt',
                              b'airplane\n', 0o4644)]:
      info = tarfile.TarInfo(name)
      info.mode, info.uid, info.gid = mode, 4321, 4321
      info.uname, info.gname = uname, uname
      if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
      else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
  return buffer.getvalue()


@pytest.mark.parametrize('python', ['with the data filter', 'without'])
@pytest.mark.parametrize('uname', ['daemon', 'no-such-user'])
def test_extraction_writes_plain_files_of_whoever_runs_it(tmp_path, monkeypatch,
                                                          python, uname):
  # Run as root (as the tests here are), tarfile would give the files to the
  # archive's owner, by name or by number, with their setuid bits.
  if python == 'without':  # Python before 3.10.12: no tarfile.data_filter.
    monkeypatch.delattr(tarfile, 'data_filter')
  archive = _owned_archive(uname)
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  (data_dir / 'cifar-10-binary.tar.gz').write_bytes(archive)
  umask = os.umask(0o022)  # What a folder made by the user then looks like.
  try:
    batches = cifar10_input.maybe_download_and_extract(
        str(data_dir), md5=hashlib.md5(archive).hexdigest())
  finally:
    os.umask(umask)
  assert (data_dir / 'cifar-10-batches-bin' / 'data_batch_1.bin').read_bytes() \
      == b'\x01' * 3073
  for path in [batches] + [os.path.join(batches, name)
                           for name in os.listdir(batches)]:
    status = os.lstat(path)
    assert stat.S_ISDIR(status.st_mode) or stat.S_ISREG(status.st_mode)
    assert (status.st_uid, status.st_gid) == (os.getuid(), os.getgid()), path
    assert not status.st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX)
    assert not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH), oct(
        status.st_mode)
    assert status.st_mode & stat.S_IRUSR


def test_a_symlink_loop_as_data_dir_is_named_as_one(tmp_path, run_in_process):
  # It was 'Cannot write the download ...: File exists.'
  loop = tmp_path / 'data'
  os.symlink('data', str(loop))
  url = 'http://127.0.0.1:%d/cifar-10-binary.tar.gz' % _closed_port()
  expected = (
      '--data_dir=%s cannot be used: %s is a symlink loop (a link that leads '
      'back to itself, directly or through other links). Remove or mend it, '
      'or point --data_dir at another folder.' % (loop, loop))
  for read in (lambda: cifar10_input.maybe_download_and_extract(str(loop),
                                                                url=url),
               lambda: cifar10_input.data_files(str(loop))):
    with pytest.raises(cifar10_input.CifarDataError) as raised:
      read()
    assert str(raised.value) == expected
  # What cifar10_train says: that line, nothing more.
  result = run_in_process('cifar10.cifar10_train', [
      '--data_dir', str(loop), '--train_dir', str(tmp_path / 'train')])
  assert result.returncode == 2
  assert result.stderr.splitlines()[-1] == 'cifar10_train: error: ' + expected
  assert 'Traceback' not in result.stderr


def test_a_link_to_nothing_as_data_dir_says_where_it_leads(tmp_path):
  # It was 'Cannot write the download ...: File exists.'
  link = tmp_path / 'data'
  os.symlink(str(tmp_path / 'moved'), str(link))
  url = 'http://127.0.0.1:%d/cifar-10-binary.tar.gz' % _closed_port()
  with pytest.raises(cifar10_input.CifarDataError) as raised:
    cifar10_input.maybe_download_and_extract(str(link), url=url)
  assert str(raised.value).startswith(
      '--data_dir=%s cannot be used: %s is a link to %s, which does not '
      'exist.' % (link, link, tmp_path / 'moved'))


@pytest.mark.parametrize('thing', ['a link to itself', 'a file'])
def test_what_is_where_the_batches_folder_belongs_is_named(tmp_path, thing):
  # A link to itself was 'Could not download'; a file, 'Archive ... did not
  # contain cifar-10-batches-bin/' once the download had come.
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  batches = data_dir / 'cifar-10-batches-bin'
  if thing == 'a file':
    batches.write_bytes(b'')
    words = 'is a file'
  else:
    os.symlink('cifar-10-batches-bin', str(batches))
    words = ('is a symlink loop (a link that leads back to itself, directly '
             'or through other links)')
  url = 'http://127.0.0.1:%d/cifar-10-binary.tar.gz' % _closed_port()
  expected = (
      '%s %s, where the folder of CIFAR-10 batches belongs: remove it and run '
      'again to download the data afresh, or put the extracted '
      'cifar-10-batches-bin/ folder there.' % (batches, words))
  for read in (lambda: cifar10_input.maybe_download_and_extract(
      str(data_dir), url=url), lambda: cifar10_input.data_files(str(data_dir))):
    with pytest.raises(cifar10_input.CifarDataError) as raised:
      read()
    assert str(raised.value) == expected
  assert os.listdir(str(data_dir)) == ['cifar-10-batches-bin']


def test_a_download_into_a_folder_behind_a_loop_names_the_loop(tmp_path):
  # MNIST's downloads go through the same helper.
  loop = tmp_path / 'loop'
  os.symlink('loop', str(loop))
  with pytest.raises(download.DownloadError) as raised:
    download.download('http://127.0.0.1:%d/t10k-labels-idx1-ubyte.gz' %
                      _closed_port(), str(loop / 'mnist' / 'labels.gz'))
  assert str(raised.value) == (
      'Cannot write the download labels.gz into %s: %s is a symlink loop (a '
      'link that leads back to itself, directly or through other links).'
      % (loop / 'mnist', loop))
