"""maybe_download_and_extract against a local HTTP server and local archives."""
import functools
import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading

import pytest

from cifar10 import cifar10_input


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
