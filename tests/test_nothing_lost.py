"""What the trainers may remove or write: --fresh removes only what a trainer
wrote, a run with nothing to do writes nothing, a checkpoint of the other
kind of schedule is refused both ways, and weights that are not finite never
become the latest checkpoint (nor get evaluated without a word)."""
import functools
import os
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from cifar10 import cifar10_eval
from cifar10 import cifar10_train
import cifar_fixtures
from tutorials_common import checkpoints


def _listing(folder):
  """{relative path: (size, mtime)} of every file under folder."""
  found = {}
  for root, _, names in os.walk(str(folder)):
    for name in names:
      path = os.path.join(root, name)
      found[os.path.relpath(path, str(folder))] = (os.path.getsize(path),
                                                   os.path.getmtime(path))
  return found


def _train(run_in_process, data_dir, train_dir, *args):
  return run_in_process('cifar10.cifar10_train', [
      '--data_dir', str(data_dir), '--train_dir', str(train_dir),
      '--batch_size', '16', '--log_frequency', '5'] + list(args))


@pytest.fixture
def data_dir(tmp_path):
  return cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=20)


def test_fresh_refuses_a_folder_holding_a_users_files(tmp_path, data_dir,
                                                       run_in_process):
  folder = tmp_path / 'Documents'
  (folder / 'thesis').mkdir(parents=True)
  (folder / 'thesis' / 'thesis.txt').write_text('three years of work')
  (folder / 'checkpoint').write_text('model_checkpoint_path: "model.ckpt-5"')
  before = _listing(folder)
  result = _train(run_in_process, data_dir, folder, '--fresh',
                  '--max_steps', '5')
  assert result.returncode == 2
  assert result.stderr == (
      'cifar10_train: error: --fresh removes only what a trainer wrote, and '
      '--train_dir=%s also holds thesis: choose another --train_dir, or move '
      'it away first.\n' % folder)
  assert _listing(folder) == before


@pytest.mark.parametrize('inside', [True, False])
def test_fresh_refuses_a_train_dir_that_holds_the_data(tmp_path, data_dir,
                                                       run_in_process,
                                                       inside):
  # The data inside the train dir, or the two the same folder.
  train_dir = tmp_path if inside else data_dir
  before = _listing(data_dir)
  result = _train(run_in_process, data_dir, train_dir, '--fresh',
                  '--max_steps', '5')
  assert result.returncode == 2
  assert result.stderr.startswith(
      'cifar10_train: error: --fresh would remove --train_dir=%s, which holds '
      '--data_dir=%s' % (os.path.realpath(str(train_dir)), data_dir))
  assert _listing(data_dir) == before


def test_fresh_removes_what_the_trainer_wrote_and_only_that(
    cifar_trained, tmp_path, run_in_process):
  train_dir = tmp_path / 'train'
  shutil.copytree(str(cifar_trained['train_dir']), str(train_dir))
  # What a save cut short by a kill leaves, also the trainer's.
  (train_dir / 'model.ckpt-7_temp').mkdir()
  (train_dir / 'model.ckpt-7_temp' / 'part-00000-of-00001.tempstate1').write_bytes(b'')
  result = _train(run_in_process, cifar_trained['data_dir'], train_dir,
                  '--fresh', '--max_steps', '3')
  assert result.returncode == 0, result.stderr
  assert 'Resuming' not in result.stdout
  assert tf.train.latest_checkpoint(str(train_dir)).endswith('-3')
  assert not (train_dir / 'model.ckpt-7_temp').exists()
  steps = sorted(int(name.split('-')[1].split('.')[0])
                 for name in os.listdir(str(train_dir))
                 if name.startswith('model.ckpt-') and name.endswith('.index'))
  assert steps == [0, 3]  # The trained run's checkpoints are gone.


def test_a_run_with_nothing_to_do_writes_nothing(cifar_trained, tmp_path,
                                                 run_in_process):
  train_dir = tmp_path / 'train'
  shutil.copytree(str(cifar_trained['train_dir']), str(train_dir))
  before = _listing(train_dir)
  steps = cifar_trained['steps']
  # The trained run's own schedule (fast) and, past its end, any step.
  for extra in (['--schedule', 'fast', '--fast_epochs', '1',
                 '--max_steps', str(steps)],
                ['--schedule', 'fast', '--max_steps', str(steps)]):
    result = _train(run_in_process, cifar_trained['data_dir'], train_dir,
                    *extra)
    assert result.returncode == 0, result.stderr
    assert 'Already at step %d, the last: nothing to train.' % steps in \
        result.stdout
    assert _listing(train_dir) == before


def test_a_checkpoint_of_the_other_kind_of_schedule_is_refused_both_ways(
    cifar_trained, tmp_path, run_in_process):
  # The trained run is --schedule=fast (momentum); the tutorial's schedule
  # would drop the momentum and rewrite the checkpoint without it.
  train_dir = tmp_path / 'train'
  shutil.copytree(str(cifar_trained['train_dir']), str(train_dir))
  before = _listing(train_dir)
  latest = tf.train.latest_checkpoint(str(train_dir))
  result = _train(run_in_process, cifar_trained['data_dir'], train_dir,
                  '--max_steps', str(cifar_trained['steps'] + 5))
  assert result.returncode == 2
  assert result.stderr.startswith(
      'cifar10_train: error: Cannot resume from %s: it holds ' % latest)
  assert 'Momentum' in result.stderr and '--schedule' in result.stderr
  assert _listing(train_dir) == before
  # The other way round: tests/test_cifar10_scripts.py's
  # test_fast_schedule_cannot_resume_a_tutorial_run.


class _CorruptAt(tf.train.SessionRunHook):
  """After step `step`, sets variable `name` to NaN (the ops made in begin(),
  before the graph is finalized)."""

  def __init__(self, name, step):
    self._name, self._step = name, step

  def begin(self):
    variable = [v for v in tf.global_variables() if v.op.name == self._name][0]
    self._corrupt = variable.assign(tf.fill(tf.shape(variable), np.nan))
    self._global_step = tf.train.get_global_step()

  def after_run(self, run_context, run_values):
    if run_context.session.run(self._global_step) == self._step:
      run_context.session.run(self._corrupt)


@pytest.mark.parametrize('name, says', [
    # Added to the logits: the next step's loss is NaN.
    ('softmax_linear/biases', 'Model diverged with loss = NaN; the latest '
                              'checkpoint, '
                              'model.ckpt-4, is from before'),
    # Only their moving average, which the loss never sees: the save at the
    # last step finds it.
    ('conv1/weights/ExponentialMovingAverage',
     'Model diverged with weights that are not finite at step 10; the latest '
     'checkpoint, model.ckpt-4, is from before'),
])
def test_weights_that_are_not_finite_never_become_the_latest_checkpoint(
    tmp_path, data_dir, run_in_process, monkeypatch, name, says):
  train_dir = tmp_path / 'train'
  _train(run_in_process, data_dir, train_dir, '--max_steps', '4')
  monkeypatch.setattr(cifar10_train, 'train', functools.partial(
      cifar10_train.train, extra_hooks=[_CorruptAt(name, 6)]))
  result = _train(run_in_process, data_dir, train_dir, '--max_steps', '10')
  assert result.returncode == 1
  assert result.stderr.startswith('cifar10_train: error: ' + says), \
      result.stderr
  latest = checkpoints.find_checkpoint(str(train_dir))
  assert latest.endswith('model.ckpt-4')
  assert checkpoints.non_finite_variables(latest) == []


def _diverged_checkpoint(tmp_path):
  """A checkpoint whose conv1/weights are NaN, written by other code."""
  path = cifar_fixtures.write_checkpoint(tmp_path / 'train', 42, raw_class=0,
                                         shadow_class=3)
  reader = tf.train.load_checkpoint(path)
  with tf.Graph().as_default():
    variables = []
    for variable, shape in tf.train.list_variables(path):
      value = reader.get_tensor(variable)
      if variable == 'conv1/weights':
        value = np.full(shape, np.nan, value.dtype)
      variables.append(tf.Variable(value, name=variable))
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      tf.train.Saver(variables).save(session, path)
  return path


def test_a_diverged_checkpoint_is_one_line_in_every_command(
    tmp_path, data_dir, run_in_process, capsys):
  path = _diverged_checkpoint(tmp_path)
  says = ('%s holds values that are not finite (NaN or infinity) in '
          'conv1/weights, saved after the training diverged. Use an earlier '
          'checkpoint, or train again with --fresh.' % path)
  result = _train(run_in_process, data_dir, tmp_path / 'train',
                  '--max_steps', '50')
  assert result.returncode == 2
  assert result.stderr == ('cifar10_train: error: Cannot resume from it: %s\n'
                           % says)
  result = run_in_process('cifar10.cifar10_eval', [
      '--data_dir', data_dir, '--checkpoint_dir', str(tmp_path / 'train'),
      '--eval_dir', str(tmp_path / 'eval'), '--run_once', '--num_examples',
      '20'])
  assert result.returncode == 2
  assert result.stderr == 'cifar10_eval: error: Cannot evaluate it: %s\n' % says
  # Beside training, it is said once and skipped: the evaluator waits on.
  evaluator = cifar10_eval.Evaluator('test', data_dir, 20, 20)
  looks = iter(range(3))
  capsys.readouterr()
  with tf.Graph().as_default():
    writer = tf.summary.FileWriter(str(tmp_path / 'e2'))
  cifar10_eval.watch(evaluator, writer, str(tmp_path / 'train'), 0,
                     poll_secs=0,
                     keep_polling=lambda: next(looks, None) is not None)
  out = capsys.readouterr().out
  assert out.count('Cannot evaluate it: %s' % says) == 1
  assert 'precision @ 1' not in out
  # Predict and export, before any picture is read or folder made.
  picture = tmp_path / 'cat.png'
  picture.write_bytes(b'not read')
  for module, args in (
      ('cifar10.cifar10_predict', [str(picture)]),
      ('cifar10.cifar10_export', ['--export_dir', str(tmp_path / 'model')])):
    result = run_in_process(module, ['--checkpoint_dir',
                                     str(tmp_path / 'train')] + args)
    assert result.returncode == 2
    assert result.stderr == '%s: error: Cannot use it: %s\n' % (
        module.split('.')[1], says)
  assert not (tmp_path / 'model').exists()
