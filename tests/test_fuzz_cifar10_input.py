"""Fuzzing the CIFAR-10 record checks, the record decoder and the archive
extraction: random bytes, truncated files, wrong sizes, labels over 9, and
archives whose members climb out with '..', absolute paths or links.

Each property: the right result, or CifarDataError with a message; never
another exception, never a file written outside the destination.
"""
import io
import os
import tarfile
import tempfile

from hypothesis import given, settings, strategies as st
import numpy as np
import tensorflow.compat.v1 as tf

from cifar10 import cifar10_input
from suite_helpers import slow_examples

RECORD = cifar10_input.RECORD_BYTES
# Each example builds or runs TensorFlow, or writes an archive.
SLOW_EXAMPLES = slow_examples()


@st.composite
def batch_files(draw):
  """Bytes of one file: whole records with labels 0-255, cut or padded."""
  count = draw(st.integers(0, 3))
  labels = draw(st.lists(st.one_of(st.integers(0, 9), st.integers(0, 255)),
                         min_size=count, max_size=count))
  fill = draw(st.integers(0, 255))
  data = b''.join(bytes([label]) + bytes([fill]) * (RECORD - 1)
                  for label in labels)
  how = draw(st.sampled_from(['whole', 'cut', 'pad', 'random']))
  if how == 'cut' and data:
    data = data[:draw(st.integers(0, len(data) - 1))]
  elif how == 'pad':
    data += draw(st.binary(min_size=1, max_size=RECORD + 1))
  elif how == 'random':
    data = draw(st.binary(max_size=2 * RECORD + 2))
  return data


@given(st.lists(st.one_of(batch_files(), st.none()), max_size=3))
def test_check_data_files_counts_records_or_names_the_bad_file(contents):
  # None stands for a file that does not exist.
  with tempfile.TemporaryDirectory() as folder:
    paths = []
    for i, data in enumerate(contents):
      path = os.path.join(folder, 'data_batch_%d.bin' % i)
      if data is not None:
        with open(path, 'wb') as f:
          f.write(data)
      paths.append(path)
    good = bool(contents) and all(
        data is not None and data and len(data) % RECORD == 0 and
        all(label <= 9 for label in data[::RECORD]) for data in contents)
    try:
      total = cifar10_input.check_data_files(paths)
    except cifar10_input.CifarDataError as e:
      assert not good, 'good files were refused: %s' % e
      assert not contents or any(path in str(e) for path in paths)
      return
  assert good, 'a bad file was accepted'
  assert total == sum(len(data) // RECORD for data in contents)


def _read_all(data_dir, batch_size):
  """Every label the evaluation input yields for data_dir, in order."""
  with tf.Graph().as_default():
    images, labels = cifar10_input.inputs(True, data_dir, batch_size)
    found = []
    with tf.Session() as sess:
      while True:
        try:
          batch_images, batch_labels = sess.run([images, labels])
        except tf.errors.OutOfRangeError:
          return found
        assert batch_images.shape[1:] == (24, 24, 3)
        assert np.isfinite(batch_images).all()
        found.extend(batch_labels.tolist())


@settings(max_examples=SLOW_EXAMPLES)
@given(batch_files(), st.integers(1, 4))
def test_evaluation_input_yields_every_record_or_refuses_the_file(data,
                                                                  batch_size):
  with tempfile.TemporaryDirectory() as folder:
    batches = os.path.join(folder, cifar10_input.BATCHES_DIR)
    os.makedirs(batches)
    with open(os.path.join(batches, 'test_batch.bin'), 'wb') as f:
      f.write(data)
    good = (data and len(data) % RECORD == 0 and
            all(label <= 9 for label in data[::RECORD]))
    try:
      labels = _read_all(folder, batch_size)
    except cifar10_input.CifarDataError as e:
      assert not good, 'a good file was refused: %s' % e
      assert 'test_batch.bin' in str(e)
      return
  assert good, 'a bad file was read'
  assert labels == list(data[::RECORD])


@settings(max_examples=SLOW_EXAMPLES)
@given(st.lists(st.binary(min_size=RECORD, max_size=RECORD), min_size=1,
                max_size=3))
def test_decode_records_splits_label_and_channels(records):
  with tf.Graph().as_default(), tf.Session() as sess:
    images, labels = sess.run(cifar10_input.decode_records(
        tf.constant(records)))
  for record, image, label in zip(records, images, labels):
    assert label == record[0]
    planes = np.frombuffer(record[1:], np.uint8).reshape(3, 32, 32)
    np.testing.assert_array_equal(image, planes.transpose(1, 2, 0))


# --- Archive extraction -------------------------------------------------------

segments = st.sampled_from(['a', 'b', '..', '.', '', 'cifar-10-batches-bin',
                            'data_batch_1.bin', '...', 'a..b'])
KINDS = ['file', 'file', 'dir', 'symlink', 'hardlink', 'fifo', 'chrdev']


@st.composite
def archives(draw, outside):
  """A list of (name, kind, link target, data) members. `outside` is a
  folder beside the destination, for absolute names that leave it."""
  members = []
  for _ in range(draw(st.integers(0, 5))):
    parts = draw(st.lists(segments, min_size=1, max_size=4))
    name = '/'.join(parts)
    if draw(st.integers(0, 4)) == 0:
      name = os.path.join(outside, name)
    target = '/'.join(draw(st.lists(segments, min_size=1, max_size=3)))
    if draw(st.booleans()):
      target = os.path.join(outside, target)
    members.append((name, draw(st.sampled_from(KINDS)), target,
                    draw(st.binary(max_size=20))))
  return members


def _write_archive(path, members):
  with tarfile.open(path, 'w:gz') as tar:
    for name, kind, target, data in members:
      info = tarfile.TarInfo(name)
      if kind == 'file':
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        continue
      info.type = {'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE,
                   'hardlink': tarfile.LNKTYPE, 'fifo': tarfile.FIFOTYPE,
                   'chrdev': tarfile.CHRTYPE}[kind]
      info.linkname = target
      tar.addfile(info)


def _everything_under(folder):
  return sorted(os.path.join(top, name) for top, dirs, files in
                os.walk(folder) for name in dirs + files)


@settings(max_examples=SLOW_EXAMPLES)
@given(st.data())
def test_extraction_stays_inside_the_folder_or_refuses(data):
  with tempfile.TemporaryDirectory() as root:
    dest, outside = os.path.join(root, 'dest'), os.path.join(root, 'outside')
    os.makedirs(dest)
    os.makedirs(outside)
    archive = os.path.join(root, 'cifar-10-binary.tar.gz')
    members = data.draw(archives(outside))
    _write_archive(archive, members)
    try:
      cifar10_input._safe_extract(archive, dest)  # pylint: disable=protected-access
      refused = None
    except cifar10_input.CifarDataError as e:
      refused = e
    assert os.listdir(outside) == [], 'written outside the folder'
    assert sorted(os.listdir(root)) == ['cifar-10-binary.tar.gz', 'dest',
                                        'outside']
    # The names and kinds as tarfile reads them back (it drops a folder's
    # trailing '/', so a member named '/' is the destination itself).
    with tarfile.open(archive) as tar:
      read_back = tar.getmembers()
    dest_real = os.path.realpath(dest)
    leaving = [m.name for m in read_back if os.path.commonpath([
        dest_real, os.path.realpath(os.path.join(dest_real, m.name))]) !=
               dest_real]
    odd = [m.name for m in read_back if not (m.isfile() or m.isdir())]
    if refused is not None:
      assert 'Refusing to extract' in str(refused) or 'Cannot extract' in str(
          refused), refused
      return
    assert not leaving and not odd, 'a member should have been refused'
    for path in _everything_under(dest):
      assert not os.path.islink(path), 'a link was extracted: %s' % path


@settings(max_examples=SLOW_EXAMPLES)
@given(st.binary(max_size=200), st.booleans())
def test_extracting_a_damaged_archive_is_a_clear_error(junk, gzip_magic):
  with tempfile.TemporaryDirectory() as root:
    archive = os.path.join(root, 'cifar-10-binary.tar.gz')
    with open(archive, 'wb') as f:
      f.write((b'\x1f\x8b\x08' if gzip_magic else b'') + junk)
    try:
      cifar10_input._safe_extract(archive, root)  # pylint: disable=protected-access
    except cifar10_input.CifarDataError as e:
      assert archive in str(e)
      return
  # An empty archive, say: then there is nothing to check but that it passed.


def test_a_folder_named_slash_is_the_destination_itself(tmp_path):
  # From the fuzzer (a long run), a false alarm in this file's own model: a
  # folder member named '/' reads back as '' and is extracted in place.
  archive = tmp_path / 'cifar-10-binary.tar.gz'
  with tarfile.open(archive, 'w:gz') as tar:
    info = tarfile.TarInfo('/')
    info.type = tarfile.DIRTYPE
    tar.addfile(info)
  (tmp_path / 'dest').mkdir()
  cifar10_input._safe_extract(str(archive), str(tmp_path / 'dest'))  # pylint: disable=protected-access
  assert sorted(os.listdir(tmp_path)) == ['cifar-10-binary.tar.gz', 'dest']
  assert os.listdir(tmp_path / 'dest') == []


def test_damaged_archives_found_by_the_fuzzer_are_clear_errors(tmp_path):
  # Each of these ended _safe_extract in tarfile.ReadError or EOFError.
  good = io.BytesIO()
  with tarfile.open(fileobj=good, mode='w:gz') as tar:
    info = tarfile.TarInfo('cifar-10-batches-bin/test_batch.bin')
    info.size = 3000
    tar.addfile(info, io.BytesIO(b'x' * 3000))
  for name, data in [('empty', b''), ('not gzip', b'\x00'),
                     ('bad deflate', b'\x1f\x8b\x08\x00' + b'\xff' * 12),
                     ('cut short', good.getvalue()[:40])]:
    archive = tmp_path / 'cifar-10-binary.tar.gz'
    archive.write_bytes(data)
    try:
      cifar10_input._safe_extract(str(archive), str(tmp_path / 'out'))  # pylint: disable=protected-access
    except cifar10_input.CifarDataError as e:
      assert 'Cannot extract' in str(e) and 'Delete it' in str(e), name
    else:
      raise AssertionError('the %s archive was extracted' % name)
