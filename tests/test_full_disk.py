"""A disk that fills up, or a folder that is read-only, loses nothing.

Each writer (a checkpoint, an export, a bottleneck cache file, a download, a
chart) stops with one line naming the folder and the reason, leaves no
partial file, and leaves what was there before readable. Two ways:
size-limited tmpfs mounts, a real full disk (where the tests run as root, as
CI does), and failures injected into the writes in this process (anywhere).
"""
import contextlib
import errno
import os
import re
import shutil
import subprocess
import uuid

import numpy as np
import pytest
import tensorflow as tf

import cifar_fixtures
import mnist_fixtures
from cifar10 import cifar10_input
from image_retraining import bottlenecks
from tutorials_common import checkpoints
from tutorials_common import files

NO_SPACE = os.strerror(errno.ENOSPC)
READ_ONLY = os.strerror(errno.EROFS)
# What TensorFlow and this project name their half-written files.
UNFINISHED = re.compile(r'_temp|\.tempstate|\.tmp|\.part|\.partial-')


def _can_mount():
  if os.geteuid() != 0:
    return False
  probe = '/tmp/full-disk-probe-%s' % uuid.uuid4().hex
  os.makedirs(probe)
  try:
    return subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs',
                           probe], capture_output=True).returncode == 0
  finally:
    subprocess.run(['umount', probe], capture_output=True)
    os.rmdir(probe)


CAN_MOUNT = _can_mount()
needs_mount = pytest.mark.skipif(
    not CAN_MOUNT, reason='a size-limited tmpfs needs root; the injected '
    'failures below test the same code without one')


@contextlib.contextmanager
def small_disk(tmp_path, size):
  """A tmpfs of `size` ('14m') at tmp_path/disk, unmounted afterwards."""
  mount_point = tmp_path / 'disk'
  mount_point.mkdir()
  subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s' % size, 'tmpfs',
                  str(mount_point)], check=True)
  try:
    yield mount_point
  finally:
    subprocess.run(['umount', '-l', str(mount_point)], check=True)


def remount(mount_point, options):
  subprocess.run(['mount', '-o', 'remount,' + options, str(mount_point)],
                 check=True)


def unfinished_files(folder):
  return [os.path.join(root, name)
          for root, dirs, names in os.walk(str(folder))
          for name in dirs + names if UNFINISHED.search(name)]


def one_error_line(result, program):
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
  assert lines[0].startswith('%s: error: ' % program), lines[0]
  return lines[0]


# ---- checkpoints ----

@needs_mount
def test_cifar10_train_on_a_full_disk_keeps_its_last_checkpoint(
    tmp_path, run_in_process):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data',
                                          records_per_file=100)
  # Room for the first checkpoint (model.ckpt-0, ~9 MB with the moving
  # averages), the graph and the summaries, not for a second one.
  with small_disk(tmp_path, '14m') as disk:
    train_dir = disk / 'train'
    args = ['--data_dir', data_dir, '--train_dir', str(train_dir),
            '--max_steps', '6', '--batch_size', '8']
    result = run_in_process('cifar10.cifar10_train', args)
    assert result.returncode == 1
    line = one_error_line(result, 'cifar10_train')
    assert line == (
        'cifar10_train: error: cannot write checkpoint model.ckpt-6 in %s: '
        '%s. %s/model.ckpt-0, the last checkpoint, is intact: free some '
        'space, then run the same command to resume from it.' % (
            train_dir, NO_SPACE, train_dir))
    assert unfinished_files(train_dir) == []
    assert not [n for n in os.listdir(str(train_dir))
                if n.startswith('model.ckpt-6')]
    # What cifar10_eval restores.
    latest = checkpoints.find_checkpoint(str(train_dir))
    assert latest == str(train_dir / 'model.ckpt-0')
    saved = dict(tf.train.list_variables(latest))
    assert 'conv1/weights/ExponentialMovingAverage' in saved
    assert tf.train.load_variable(latest, 'global_step') == 0

    remount(disk, 'size=40m')  # Space freed: the same command resumes.
    result = run_in_process('cifar10.cifar10_train', args)
    assert result.returncode == 0, result.stderr
    assert 'Resuming from %s/model.ckpt-0 at step 0' % train_dir in result.stdout
    assert checkpoints.find_checkpoint(str(train_dir)).endswith('model.ckpt-6')


@needs_mount
def test_cifar10_eval_on_a_full_disk_is_one_line(tmp_path):
  """TensorFlow's event writer fails in a thread of its own: no traceback
  of it, nor its ERROR log line, only the command's line."""
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data',
                                          records_per_file=20)
  cifar_fixtures.write_checkpoint(tmp_path / 'train', 7)
  with small_disk(tmp_path, '64k') as disk:
    result = cifar_fixtures.run_script([
        os.path.join('cifar10', 'cifar10_eval.py'), '--data_dir', data_dir,
        '--checkpoint_dir', str(tmp_path / 'train'), '--eval_dir',
        str(disk / 'eval'), '--run_once', '--num_examples', '20'])
    assert result.returncode == 1
    line = one_error_line(result, 'cifar10_eval')
    assert re.match(r'cifar10_eval: error: cannot write '
                    r'events\.out\.tfevents\.[\w.-]+ in %s: %s\.$'
                    % (re.escape(str(disk / 'eval')), NO_SPACE), line), line


@needs_mount
def test_mnist_deep_on_a_full_disk_keeps_its_last_checkpoint(
    tmp_path, run_in_process):
  data_dir = mnist_fixtures.write_mnist(tmp_path / 'mnist', num_train=200,
                                        num_test=50)
  # One checkpoint (~39 MB: the weights and Adam's two slots) fits, not two.
  with small_disk(tmp_path, '50m') as disk:
    checkpoint_dir = disk / 'checkpoints'
    result = run_in_process('mnist_cnn.mnist_deep', [
        '--data_dir', str(data_dir), '--checkpoint_dir', str(checkpoint_dir),
        '--log_dir', str(tmp_path / 'logs'), '--steps', '4',
        '--checkpoint_every', '2', '--eval_every', '4', '--batch_size', '10'])
    assert result.returncode == 1
    assert one_error_line(result, 'mnist_deep') == (
        'mnist_deep: error: cannot write checkpoint model.ckpt-4 in %s: %s. '
        '%s/model.ckpt-2, the last checkpoint, is intact: free some space, '
        'then run the same command to resume from it.' % (
            checkpoint_dir, NO_SPACE, checkpoint_dir))
    assert unfinished_files(checkpoint_dir) == []
    assert sorted(os.listdir(str(checkpoint_dir))) == [
        'checkpoint', 'model.ckpt-2.data-00000-of-00001', 'model.ckpt-2.index',
        'model.ckpt-2.meta']
    assert tf.train.load_variable(str(checkpoint_dir / 'model.ckpt-2'),
                                  'global_step') == 2


@needs_mount
def test_a_read_only_train_dir_is_one_line(tmp_path, run_in_process):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data',
                                          records_per_file=100)
  with small_disk(tmp_path, '1m') as disk:
    remount(disk, 'ro')
    result = run_in_process('cifar10.cifar10_train', [
        '--data_dir', data_dir, '--train_dir', str(disk / 'train'),
        '--max_steps', '2'])
    assert result.returncode == 1
    assert one_error_line(result, 'cifar10_train') == (
        'cifar10_train: error: cannot write train in %s: %s.' % (disk,
                                                                 READ_ONLY))


def _small_checkpoint(folder, step):
  with tf.Graph().as_default():
    tf.compat.v1.Variable(np.arange(4, dtype=np.float32), name='weights')
    global_step = tf.compat.v1.train.get_or_create_global_step()
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      session.run(global_step.assign(step))
      return saver.save(session, os.path.join(str(folder), 'model.ckpt'),
                        global_step=step)


@pytest.mark.parametrize('sharded', [True, False])
def test_a_failed_save_leaves_the_last_checkpoint_and_no_part(tmp_path,
                                                              sharded):
  """The error TensorFlow raises, made by hand: no root needed."""
  folder = tmp_path / 'train'
  folder.mkdir()
  kept = _small_checkpoint(folder, 10)
  # What a save of step 20 leaves when the disk fills: a sharded save's
  # temporary folder, or a plain one's '.tempstate' part and a data file
  # without its index.
  if sharded:
    (folder / 'model.ckpt-20_temp').mkdir()
    failed = folder / 'model.ckpt-20_temp' / (
        'part-00001-of-00002.data-00000-of-00001.tempstate2148760064612209565')
  else:
    failed = folder / 'model.ckpt-20.data-00000-of-00001.tempstate-9116'
    (folder / 'model.ckpt-20.data-00000-of-00001').write_bytes(b'\0' * 10)
  failed.write_bytes(b'\0' * 10)
  (folder / 'graph.pbtxt.tmpb986bb99d92446049daf932309b93d1a').write_text('')
  (folder / 'notes_temp').mkdir()  # A user's folder: kept.
  (folder / 'notes_temp' / 'todo.txt').write_text('')
  error = tf.errors.ResourceExhaustedError(
      None, None, 'Graph execution error:\n\nDetected at node save/SaveV2\n'
      '%s; No space left on device\n\t [[{{node save/SaveV2_1}}]]' % failed)
  failure = checkpoints.save_failed(error, str(folder))
  assert str(failure) == (
      'cannot write checkpoint model.ckpt-20 in %s: %s. %s, the last '
      'checkpoint, is intact: free some space, then run the same command to '
      'resume from it.' % (folder, NO_SPACE, kept))
  assert sorted(os.listdir(str(folder))) == [
      'checkpoint', 'model.ckpt-10.data-00000-of-00001', 'model.ckpt-10.index',
      'model.ckpt-10.meta', 'notes_temp']
  assert checkpoints.find_checkpoint(str(folder)) == kept
  assert tf.train.load_variable(kept, 'weights').tolist() == [0, 1, 2, 3]


def test_a_read_only_folder_before_any_checkpoint(tmp_path):
  error = tf.errors.PermissionDeniedError(
      None, None, '%s/train/events.out.tfevents.1.vm; Read-only file system'
      % tmp_path)
  assert str(checkpoints.save_failed(error, str(tmp_path / 'train'))) == (
      'cannot write events.out.tfevents.1.vm in %s/train: Read-only file '
      'system. No checkpoint was saved yet: make %s/train writable, then run '
      'the command again.' % (tmp_path, tmp_path))


def test_any_write_tensorflow_fails_is_named_and_its_temporary_file_removed(
    tmp_path):
  """What a command prints for a write no code of its own expected."""
  (tmp_path / 'graph.pbtxt.tmpb986bb99d92446049daf932309b93d1a').write_text('')
  (tmp_path / 'graph.pbtxt').write_text('kept')
  error = tf.errors.ResourceExhaustedError(
      None, None, '%s/graph.pbtxt.tmpb986bb99d92446049daf932309b93d1a; No '
      'space left on device' % tmp_path)
  assert str(files.as_write_error(error)) == (
      'cannot write graph.pbtxt in %s: %s.' % (tmp_path, NO_SPACE))
  assert os.listdir(str(tmp_path)) == ['graph.pbtxt']


def test_errors_other_than_the_disk_pass_through(tmp_path):
  assert checkpoints.save_failed(
      tf.errors.InvalidArgumentError(None, None, 'logits and labels must be '
                                     'broadcastable'), str(tmp_path)) is None
  assert files.write_failure(OSError(errno.ENOENT, 'No such file', 'x')) is None
  assert files.write_failure(ValueError('a; No space left')) is None


# ---- exports ----

@needs_mount
def test_an_export_that_fills_the_disk_keeps_the_previous_export(
    tmp_path, cifar10_exported, run_in_process):
  previous = cifar10_exported['export_dir']
  size = sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(previous) for name in names)
  # Room for one export and a half: not for the new one beside the old.
  with small_disk(tmp_path, '%dk' % (size * 3 // 2 // 1024 + 64)) as disk:
    export_dir = disk / 'model'
    shutil.copytree(previous, str(export_dir))
    before = (export_dir / 'saved_model.pb').read_bytes()
    result = run_in_process('cifar10.cifar10_export', [
        '--checkpoint_dir', cifar10_exported['train_dir'], '--export_dir',
        str(export_dir), '--data_dir', cifar10_exported['data_dir'],
        '--tflite', '--quantize', '--overwrite'])  # As the fixture's was.
    assert result.returncode == 1
    assert one_error_line(result, 'cifar10_export') == (
        'cifar10_export: error: cannot write the export model in %s: %s. %s '
        'is as it was.' % (disk, NO_SPACE, export_dir))
    assert sorted(os.listdir(str(disk))) == ['model']
    assert (export_dir / 'saved_model.pb').read_bytes() == before
    loaded = tf.saved_model.load(str(export_dir))
    assert 'serving_default' in loaded.signatures


def test_a_folder_written_whole_or_not_at_all(tmp_path):
  target = tmp_path / 'model'
  target.mkdir()
  (target / 'saved_model.pb').write_bytes(b'old')

  def no_space(*args):
    raise tf.errors.ResourceExhaustedError(
        None, None, '%s; No space left on device' % os.path.join(*args))

  with pytest.raises(files.WriteError) as raised:
    with files.staged_folder(str(target), 'the export') as new:
      os.makedirs(new)
      (tmp_path / 'half').write_bytes(b'')
      no_space(new, 'variables', 'variables_temp', 'part-0.tempstate1')
  assert str(raised.value) == ('cannot write the export model in %s: %s. %s '
                               'is as it was.' % (tmp_path, NO_SPACE, target))
  assert sorted(os.listdir(str(tmp_path))) == ['half', 'model']
  assert (target / 'saved_model.pb').read_bytes() == b'old'

  with files.staged_folder(str(target)) as new:  # And when it works:
    os.makedirs(new)
    with open(os.path.join(new, 'saved_model.pb'), 'wb') as f:
      f.write(b'new')
  assert (target / 'saved_model.pb').read_bytes() == b'new'
  assert sorted(os.listdir(str(tmp_path))) == ['half', 'model']


# ---- the bottleneck cache ----

class _Extractor(object):
  """Six numbers per image; what cache_bottlenecks needs of an extractor."""
  handle = 'extractor'
  image_size = None

  def __call__(self, images):
    return np.tile(np.mean(images, axis=(1, 2)), 2)


def _image_lists(image_dir, count):
  os.makedirs(os.path.join(str(image_dir), 'red'))
  names = []
  for i in range(count):
    name = 'img%02d.png' % i
    pixels = np.full((4, 4, 3), 10 * i, np.uint8)
    with open(os.path.join(str(image_dir), 'red', name), 'wb') as f:
      f.write(tf.io.encode_png(pixels).numpy())
    names.append(name)
  return {'red': {'dir': 'red', 'training': names, 'testing': [],
                  'validation': []}}


def _cache_fails_after(monkeypatch, count, error):
  written = []
  real = files.write_atomically

  def write(path, data, durable=True):
    if len(written) == count:
      raise files.cannot_write(path, error)
    written.append(path)
    return real(path, data, durable)

  monkeypatch.setattr(files, 'write_atomically', write)
  return written


def test_a_full_bottleneck_cache_keeps_the_files_cached(tmp_path, monkeypatch):
  image_dir, cache = tmp_path / 'images', tmp_path / 'cache'
  lists = _image_lists(image_dir, 5)
  written = _cache_fails_after(monkeypatch, 3, OSError(errno.ENOSPC, NO_SPACE))
  with pytest.raises(files.WriteError) as raised:
    bottlenecks.cache_bottlenecks(lists, str(image_dir), str(cache),
                                  _Extractor(), batch_size=2)
  folder = os.path.join(str(cache), 'red')
  assert str(raised.value) == (
      'cannot write img03.png_extractor.txt in %s: %s. The 3 bottlenecks '
      'cached before it are kept: fix that, then run the same command to go '
      'on from them.' % (folder, NO_SPACE))
  assert sorted(os.listdir(folder)) == sorted(
      os.path.basename(path) for path in written)
  monkeypatch.undo()
  _, stats = bottlenecks.cache_bottlenecks(lists, str(image_dir), str(cache),
                                           _Extractor())
  assert stats['reused'] == 3 and stats['created'] == 2


@needs_mount
def test_a_bottleneck_file_on_a_full_disk(tmp_path):
  with small_disk(tmp_path, '64k') as disk:
    path = disk / 'red' / 'img00.png_x.txt'
    bottlenecks.write_bottleneck(str(path), np.ones(6, np.float32))
    (disk / 'filler').write_bytes(b'\0' * (os.statvfs(str(disk)).f_bavail *
                                           os.statvfs(str(disk)).f_frsize))
    with pytest.raises(files.WriteError) as raised:
      bottlenecks.write_bottleneck(str(path), np.zeros(2000, np.float32))
    assert str(raised.value) == 'cannot write img00.png_x.txt in %s/red: %s.' % (
        disk, NO_SPACE)
    assert bottlenecks.read_bottleneck(str(path)).tolist() == [1.0] * 6
    assert unfinished_files(disk) == []


# ---- downloads and charts ----

@needs_mount
def test_a_download_onto_a_full_disk(tmp_path):
  archive = tmp_path / 'cifar-10-binary.tar.gz'
  archive.write_bytes(os.urandom(200 * 1024))
  with small_disk(tmp_path, '64k') as disk:
    with pytest.raises(cifar10_input.CifarDataError) as raised:
      cifar10_input.maybe_download_and_extract(
          str(disk / 'data'), url=archive.as_uri(), md5=None)
    assert str(raised.value) == (
        'Cannot write the download cifar-10-binary.tar.gz into %s/data: %s.'
        % (disk, NO_SPACE))
    assert os.listdir(str(disk)) == []  # Nor the folder it made.


@needs_mount
def test_a_chart_into_a_read_only_folder_keeps_the_old_one(tmp_path):
  with small_disk(tmp_path, '64k') as disk:
    chart = disk / 'chart.png'
    files.write_atomically(str(chart), b'old chart')
    remount(disk, 'ro')
    with pytest.raises(files.WriteError) as raised:
      files.write_atomically(str(chart), b'new chart')
    assert str(raised.value) == 'cannot write chart.png in %s: %s.' % (
        disk, READ_ONLY)
    assert chart.read_bytes() == b'old chart'
    assert os.listdir(str(disk)) == ['chart.png']
