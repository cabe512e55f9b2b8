"""cifar10_train.py and cifar10_eval.py run as a user runs them, on small data."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from tensorboard.backend.event_processing import event_accumulator

import cifar_fixtures
from cifar_fixtures import REPO_ROOT, run_script

TRAIN = os.path.join('cifar10', 'cifar10_train.py')
EVAL = os.path.join('cifar10', 'cifar10_eval.py')
STEP_LINE = re.compile(
    r'^\d{4}-\d\d-\d\d [\d:.]+: step (\d+), loss = ([\d.]+) '
    r'\(([\d.]+) examples/sec; ([\d.]+) sec/batch\)$', re.M)
PRECISION_LINE = re.compile(r'^\d{4}-\d\d-\d\d [\d:.]+: precision @ 1 = '
                            r'([\d.]+)$', re.M)


def _events(log_dir):
  acc = event_accumulator.EventAccumulator(
      str(log_dir), size_guidance={event_accumulator.SCALARS: 0,
                                   event_accumulator.HISTOGRAMS: 0,
                                   event_accumulator.IMAGES: 0})
  acc.Reload()
  return acc


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A 250-step run on learnable data, then a one-off evaluation."""
  root = tmp_path_factory.mktemp('trained')
  data_dir = cifar_fixtures.write_dataset(root / 'data', records_per_file=200)
  train_dir, eval_dir = root / 'train', root / 'eval'
  train = run_script([TRAIN, '--data_dir', data_dir, '--train_dir',
                      str(train_dir), '--max_steps', '250', '--batch_size',
                      '64', '--save_summaries_steps', '50'])
  assert train.returncode == 0, train.stderr
  evaluation = run_script([EVAL, '--data_dir', data_dir, '--checkpoint_dir',
                           str(train_dir), '--eval_dir', str(eval_dir),
                           '--run_once', '--num_examples', '200'])
  assert evaluation.returncode == 0, evaluation.stderr
  return dict(data_dir=data_dir, train_dir=train_dir, eval_dir=eval_dir,
              train=train, evaluation=evaluation)


def test_training_drives_the_loss_down_and_eval_above_chance(trained):
  out = trained['train'].stdout
  assert ('Filling queue with 20000 CIFAR images before starting to train. '
          'This will take a few minutes.') in out
  steps = [(int(s), float(l)) for s, l, _, _ in STEP_LINE.findall(out)]
  assert [s for s, _ in steps] == list(range(10, 251, 10))
  assert steps[-1][1] < steps[0][1] - 1.0
  precision = [float(p) for p in PRECISION_LINE.findall(
      trained['evaluation'].stdout)]
  assert len(precision) == 1 and precision[0] > 0.5  # Chance is 0.1.


def test_summaries_read_back_with_tensorboard(trained):
  train_events = _events(trained['train_dir'])
  scalars = set(train_events.Tags()['scalars'])
  assert {'total_loss', 'total_loss (raw)', 'cross_entropy',
          'cross_entropy (raw)', 'local3/weight_loss (raw)',
          'learning_rate', 'conv1/conv1/sparsity', 'local4/local4/sparsity'} <= scalars
  assert [e.step for e in train_events.Scalars('learning_rate')][-1] >= 100
  assert train_events.Scalars('learning_rate')[0].value == pytest.approx(0.1)
  histograms = set(train_events.Tags()['histograms'])
  assert {'conv1/conv1/activations', 'local3/weights',
          'local3/weights/gradients'} <= histograms
  assert any('images' in t for t in train_events.Tags()['images'])
  assert train_events.Tags()['graph']
  eval_events = _events(trained['eval_dir'])
  precision = eval_events.Scalars('Precision @ 1')
  assert [e.step for e in precision] == [250]
  assert precision[0].value > 0.5


@pytest.mark.parametrize('flip', [False, True])
def test_eval_restores_moving_averages_and_counts_each_example_once(tmp_path,
                                                                    flip):
  # 100 test images of class 3 and 30 of class 5; batch 128 leaves a partial
  # batch of 2. The raw weights say "class 0", the averages "class 3".
  data_dir = cifar_fixtures.write_dataset(
      tmp_path / 'data', records_per_file=2, test_labels=[3] * 100 + [5] * 30)
  cifar_fixtures.write_checkpoint(tmp_path / 'train', 42, raw_class=0,
                                  shadow_class=3)
  result = run_script([EVAL, '--data_dir', data_dir, '--checkpoint_dir',
                       str(tmp_path / 'train'), '--eval_dir',
                       str(tmp_path / 'eval'), '--run_once',
                       '--num_examples', '130', '--eval_flip=%s' % flip])
  assert result.returncode == 0, result.stderr
  assert PRECISION_LINE.findall(result.stdout) == ['%.3f' % (100 / 130.)]
  assert re.search(r': evaluated 130 examples in [\d.]+ s \(\d+ examples/sec\)',
                   result.stdout)
  precision = _events(tmp_path / 'eval').Scalars('Precision @ 1')
  assert precision[0].step == 42
  assert precision[0].value == pytest.approx(100 / 130.)


def _wait_for(predicate, timeout, what):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    time.sleep(0.2)
  raise AssertionError('timed out waiting for ' + what)


def test_eval_beside_training_waits_then_scores_each_checkpoint_once(tmp_path):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=2,
                                          test_labels=[3] * 10)
  train_dir = tmp_path / 'train'
  log = open(str(tmp_path / 'eval.log'), 'w')
  eval_process = subprocess.Popen(
      [sys.executable, EVAL, '--data_dir', data_dir, '--checkpoint_dir',
       str(train_dir), '--eval_dir', str(tmp_path / 'eval'),
       '--eval_interval_secs', '0', '--num_examples', '10'],
      cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
      env=dict(os.environ, PYTHONUNBUFFERED='1', TF_CPP_MIN_LOG_LEVEL='2'))
  read_log = lambda: open(str(tmp_path / 'eval.log')).read()
  try:
    _wait_for(lambda: 'waiting for the trainer' in read_log(), 60, 'wait line')
    cifar_fixtures.write_checkpoint(train_dir, 1, raw_class=0, shadow_class=3)
    _wait_for(lambda: len(PRECISION_LINE.findall(read_log())) == 1, 60,
              'first evaluation')
    cifar_fixtures.write_checkpoint(train_dir, 2, raw_class=3, shadow_class=0)
    _wait_for(lambda: len(PRECISION_LINE.findall(read_log())) == 2, 60,
              'second evaluation')
    time.sleep(3)  # Several polls: neither checkpoint is evaluated again.
  finally:
    eval_process.kill()
    eval_process.wait()
  assert PRECISION_LINE.findall(read_log()) == ['1.000', '0.000']


def test_eval_survives_a_checkpoint_deleted_before_reading(tmp_path):
  import tensorflow.compat.v1 as tf
  from cifar10 import cifar10_eval
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=2)
  path = cifar_fixtures.write_checkpoint(tmp_path / 'train', 5, 0, 3)
  evaluator = cifar10_eval.Evaluator('test', data_dir, 4, 2)
  with tf.Graph().as_default():
    writer = tf.summary.FileWriter(str(tmp_path / 'eval'))
  for f in os.listdir(str(tmp_path / 'train')):
    if f.startswith('model.ckpt-5'):
      os.remove(str(tmp_path / 'train' / f))
  assert cifar10_eval.eval_once(evaluator, writer, path) is False
  path = cifar_fixtures.write_checkpoint(tmp_path / 'train', 6, 0, 3)
  assert cifar10_eval.eval_once(evaluator, writer, path) is True


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=20)
  train_dir = tmp_path / 'train'
  args = [sys.executable, TRAIN, '--data_dir', data_dir, '--train_dir',
          str(train_dir), '--batch_size', '8', '--save_checkpoint_secs', '1']
  first = subprocess.Popen(args + ['--max_steps', '100000'], cwd=REPO_ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    def checkpoint_step():
      import tensorflow.compat.v1 as tf
      latest = tf.train.latest_checkpoint(str(train_dir))
      return int(latest.rsplit('-', 1)[1]) if latest else 0
    _wait_for(lambda: checkpoint_step() >= 20, 120, 'a checkpoint past step 20')
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  killed_at = checkpoint_step()
  # Whatever the kill interrupted, the latest checkpoint is readable.
  evaluation = run_script([EVAL, '--data_dir', data_dir, '--checkpoint_dir',
                           str(train_dir), '--eval_dir', str(tmp_path / 'e'),
                           '--run_once', '--num_examples', '20'])
  assert evaluation.returncode == 0, evaluation.stderr
  assert len(PRECISION_LINE.findall(evaluation.stdout)) == 1
  resumed = run_script([TRAIN] + args[2:] + ['--max_steps',
                                             str(killed_at + 20)])
  assert resumed.returncode == 0, resumed.stderr
  assert 'at step %d' % killed_at in resumed.stdout
  steps = [int(s) for s, _, _, _ in STEP_LINE.findall(resumed.stdout)]
  assert steps and min(steps) > killed_at and max(steps) <= killed_at + 20
  assert checkpoint_step() == killed_at + 20
  # --fresh starts again from step 0.
  fresh = run_script([TRAIN] + args[2:] + ['--max_steps', '10', '--fresh'])
  assert fresh.returncode == 0, fresh.stderr
  assert 'Resuming' not in fresh.stdout
  assert checkpoint_step() == 10


@pytest.mark.parametrize('damage, message', [
    ('missing', 'Missing CIFAR-10 file'),
    ('truncated', 'not a positive multiple'),
    ('not_cifar', 'not in the CIFAR-10 binary format'),
    ('empty_dir', 'folder is empty'),
])
def test_bad_data_is_a_clear_error_not_a_hang(tmp_path, damage, message):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=3)
  batches = os.path.join(data_dir, 'cifar-10-batches-bin')
  bad = os.path.join(batches, 'data_batch_2.bin')
  if damage == 'missing':
    os.remove(bad)
  elif damage == 'truncated':
    with open(bad, 'ab') as f:
      f.write(b'\0' * 10)
  elif damage == 'not_cifar':
    with open(bad, 'wb') as f:
      f.write(b'\xff' * 3073 * 3)
  else:
    shutil.rmtree(batches)
    os.mkdir(batches)
    bad = os.path.join(batches, 'data_batch_1.bin')
  started = time.time()
  result = run_script([TRAIN, '--data_dir', data_dir, '--train_dir',
                       str(tmp_path / 'train'), '--max_steps', '5'], timeout=60)
  assert time.time() - started < 60
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr
  assert 'cifar10_train: error:' in result.stderr
  assert message in result.stderr and bad in result.stderr


@pytest.mark.parametrize('how', ['inside_cifar10', 'from_root', 'console'])
def test_scripts_run_the_three_ways_a_user_types_them(tmp_path, how):
  args = ['--checkpoint_dir', str(tmp_path / 'none'), '--eval_dir',
          str(tmp_path / 'eval'), '--data_dir',
          cifar_fixtures.write_dataset(tmp_path / 'data', 2), '--run_once',
          '--num_examples', '2']
  if how == 'inside_cifar10':
    result = run_script(['cifar10_eval.py'] + args,
                        cwd=os.path.join(REPO_ROOT, 'cifar10'))
  elif how == 'from_root':
    result = run_script([EVAL] + args)
  else:
    executable = shutil.which('cifar10_eval')
    assert executable, 'console script missing: run pip install -e .'
    result = run_script([executable] + args, cwd=str(tmp_path))
  assert result.returncode == 1
  assert result.stdout.strip().endswith('No checkpoint file found')


def test_eval_flip_scores_a_trained_model_like_plain_eval(trained):
  result = run_script([EVAL, '--data_dir', trained['data_dir'],
                       '--checkpoint_dir', str(trained['train_dir']),
                       '--eval_dir', str(trained['eval_dir']) + '_flip',
                       '--run_once', '--num_examples', '200',
                       '--eval_flip'])
  assert result.returncode == 0, result.stderr
  plain = float(PRECISION_LINE.findall(trained['evaluation'].stdout)[0])
  flipped = float(PRECISION_LINE.findall(result.stdout)[0])
  assert flipped > 0.5 and abs(flipped - plain) < 0.15
  assert 'evaluated 200 examples' in result.stdout


def test_fast_schedule_stops_at_its_end_and_cannot_resume_a_tutorial_run(
    trained, tmp_path):
  # 0.128 epochs of 64-image batches: ceil(0.128 * 50000 / 64) = 100 steps.
  train_dir = tmp_path / 'fast'
  fast = run_script([TRAIN, '--data_dir', trained['data_dir'], '--train_dir',
                     str(train_dir), '--batch_size', '64', '--schedule=fast',
                     '--fast_epochs', '0.128', '--save_summaries_steps', '25'])
  assert fast.returncode == 0, fast.stderr
  steps = [int(s) for s, _, _, _ in STEP_LINE.findall(fast.stdout)]
  assert steps[-1] == 100
  import tensorflow.compat.v1 as tf
  assert tf.train.latest_checkpoint(str(train_dir)).endswith('-100')
  rates = {e.step: e.value for e in _events(train_dir).Scalars('learning_rate')}
  assert max(rates.values()) <= 0.02 + 1e-6
  # Past the 15-step warm-up the rate falls towards zero.
  falling = [rate for step, rate in sorted(rates.items()) if step > 20]
  assert len(falling) >= 3 and falling[-1] > 0
  assert all(a > b for a, b in zip(falling, falling[1:]))
  # A tutorial checkpoint has no momentum to resume the fast schedule from.
  tutorial_dir = tmp_path / 'tutorial'
  shutil.copytree(str(trained['train_dir']), str(tutorial_dir))
  mixed = run_script([TRAIN, '--data_dir', trained['data_dir'], '--train_dir',
                      str(tutorial_dir), '--batch_size', '64',
                      '--schedule=fast'])
  assert mixed.returncode != 0
  assert 'Traceback' not in mixed.stderr
  assert 'cifar10_train: error: Cannot resume from' in mixed.stderr
  assert '--fresh' in mixed.stderr


OP_COUNT_PROGRAM = """
import sys
from absl import flags
import tensorflow.compat.v1 as tf
from cifar10 import cifar10_train

class OpCount(tf.train.SessionRunHook):
  def after_create_session(self, session, coord):
    self.graph = session.graph
    self.counts = [len(self.graph.get_operations())]
    self.refused = None

  def after_run(self, run_context, run_values):
    self.counts.append(len(self.graph.get_operations()))
    if len(self.counts) == 10:
      self.finalized = self.graph.finalized
      try:
        with self.graph.as_default():
          tf.constant(1.0)
      except RuntimeError as e:
        self.refused = str(e)

tf.disable_eager_execution()
cifar10_train.define_flags()
flags.FLAGS(sys.argv)
cifar10_train.prepare_train_dir()
hook = OpCount()
cifar10_train.train(extra_hooks=[hook])
print('finalized=%s runs=%d ops=%d..%d refused=%s' % (
    hook.finalized, len(hook.counts) - 1, min(hook.counts),
    max(hook.counts), hook.refused))
"""


def test_training_graph_is_finalized_and_its_op_count_fixed(trained, tmp_path):
  result = run_script([sys.executable, '-c', OP_COUNT_PROGRAM, '--data_dir',
                       trained['data_dir'], '--train_dir', str(tmp_path),
                       '--max_steps', '120', '--batch_size', '16',
                       '--save_summaries_steps', '50'])
  assert result.returncode == 0, result.stderr
  match = re.search(r'finalized=(\w+) runs=(\d+) ops=(\d+)\.\.(\d+) '
                    r'refused=(.*)', result.stdout)
  assert match, result.stdout
  finalized, runs, fewest, most, refused = match.groups()
  assert finalized == 'True' and int(runs) == 120
  assert fewest == most and int(fewest) > 500  # The whole training graph.
  assert 'finalized' in refused
