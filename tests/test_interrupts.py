"""Ctrl-C and SIGTERM: a trainer stops at a safe point with its work saved."""
import os
import signal
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf

import cifar_fixtures
import mnist_fixtures
from tutorials_common import interrupts


@pytest.mark.parametrize('number', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_is_a_stop_request_and_the_save_is_not_cut_short(number):
  with interrupts.StopRequests() as stop:
    assert not stop.requested
    os.kill(os.getpid(), number)
    assert stop.requested and stop.signal_number == number
    with stop.saving():
      for _ in range(interrupts.FORCE_AFTER + 1):  # Ignored while saving.
        os.kill(os.getpid(), number)
    with pytest.raises(KeyboardInterrupt):  # Repeated: stop at once.
      os.kill(os.getpid(), number)
  assert signal.getsignal(number) is not stop._handle  # pylint: disable=protected-access
  assert interrupts.Interrupted(number, 'x').exit_status == {
      signal.SIGINT: 130, signal.SIGTERM: 143}[number]


def _interrupt_after(command, started_line, number):
  """Runs command (a script and its flags) as a user does, sends it signal
  number once it printed started_line and once more straight after, and
  returns (returncode, the rest of its stdout, its stderr)."""
  trainer = subprocess.Popen(
      [sys.executable] + command, cwd=cifar_fixtures.REPO_ROOT,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, PYTHONUNBUFFERED='1'))
  try:
    out = ''
    while started_line not in out:
      line = trainer.stdout.readline()
      assert line, trainer.stderr.read()
      out += line
    trainer.send_signal(number)
    trainer.send_signal(number)  # A second one waits for the checkpoint.
    rest, err = trainer.communicate(timeout=120)
  finally:
    if trainer.poll() is None:
      trainer.kill()
  return trainer.returncode, rest, err


def _assert_saved_and_said(checkpoint_dir, rest, at_least):
  latest = tf.train.latest_checkpoint(checkpoint_dir)
  step = tf.train.load_variable(latest, 'global_step')
  assert step >= at_least
  assert rest.strip().splitlines()[-1] == (
      'Interrupted at step %d; checkpoint saved to %s; run the same command '
      'to resume.' % (step, latest))


# Ctrl-C for cifar10_train, SIGTERM for mnist_deep: both signals end to end,
# one trainer process each (the handler is the same; the test above checks it
# for both).
def test_interrupted_training_saves_its_step_and_says_how_to_resume(tmp_path):
  number = signal.SIGINT
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=20)
  train_dir = str(tmp_path / 'train')
  returncode, rest, err = _interrupt_after(
      [os.path.join('cifar10', 'cifar10_train.py'), '--data_dir', data_dir,
       '--train_dir', train_dir, '--batch_size', '8', '--max_steps', '100000',
       '--log_frequency', '5', '--save_checkpoint_secs', '100000'],
      ': step 10,', number)
  assert returncode == 130
  assert 'Traceback' not in err and err.strip() == '', err
  _assert_saved_and_said(train_dir, rest, 10)


def test_interrupted_mnist_training_saves_its_step(tmp_path):
  data_dir = mnist_fixtures.write_mnist(tmp_path / 'data', 200, 50)
  checkpoint_dir = str(tmp_path / 'checkpoints')
  returncode, rest, err = _interrupt_after(
      [os.path.join('mnist_cnn', 'mnist_deep.py'), '--data_dir', data_dir,
       '--checkpoint_dir', checkpoint_dir, '--log_dir', str(tmp_path / 'logs'),
       '--steps', '100000', '--eval_every', '5',
       '--checkpoint_every', '100000'],
      'Step: 10,', signal.SIGTERM)
  assert returncode == 143 and 'Traceback' not in err, err
  _assert_saved_and_said(checkpoint_dir, rest, 10)
