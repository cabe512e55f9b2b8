"""cifar10_train.py and cifar10_eval.py run as a user runs them, on small data."""
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorboard.backend.event_processing import event_accumulator

import cifar_fixtures
from cifar_fixtures import REPO_ROOT, run_script
from cifar10 import cifar10
from cifar10 import cifar10_eval
from cifar10 import cifar10_input
from cifar10 import cifar10_train
from cifar10 import schedules
from cifar10 import training

TRAIN = os.path.join('cifar10', 'cifar10_train.py')
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


def test_training_drives_the_loss_down_and_eval_above_chance(cifar_trained):
  out = cifar_trained['train'].stdout
  # 40% of the 1,000 records (20,000 of the real data's 50,000).
  assert ('Filling queue with 400 CIFAR images before starting to train. '
          'This will take a few minutes.\n') in out
  steps = [(int(s), float(l)) for s, l, _, _ in STEP_LINE.findall(out)]
  assert [s for s, _ in steps] == list(range(10, cifar_trained['steps'] + 1,
                                             10))
  assert steps[-1][1] < steps[0][1] - 1.0
  precision = [float(p) for p in PRECISION_LINE.findall(
      cifar_trained['evaluation'].stdout)]
  assert len(precision) == 1 and precision[0] > 0.5  # Chance is 0.1.


def test_summaries_read_back_with_tensorboard(cifar_trained):
  train_events = _events(cifar_trained['train_dir'])
  scalars = set(train_events.Tags()['scalars'])
  assert {'total_loss', 'total_loss (raw)', 'cross_entropy',
          'cross_entropy (raw)', 'local3/weight_loss (raw)',
          'learning_rate', 'conv1/conv1/sparsity', 'local4/local4/sparsity'} <= scalars
  rates = train_events.Scalars('learning_rate')
  assert [e.step for e in rates][-1] >= 100
  # The fixture's --schedule=fast: warmed up from 0 to at most its peak.
  assert rates[0].value == pytest.approx(0.0, abs=1e-3)
  assert 0 < max(e.value for e in rates) <= schedules.FAST_PEAK_LEARNING_RATE
  histograms = set(train_events.Tags()['histograms'])
  assert {'conv1/conv1/activations', 'local3/weights',
          'local3/weights/gradients'} <= histograms
  # Activations binned over the batch's first images only (a summary step
  # over all of them cost about 7% of a run); the weights all of them.
  conv1 = train_events.Histograms('conv1/conv1/activations')[-1]
  assert conv1.histogram_value.num == (cifar10.ACTIVATION_HISTOGRAM_IMAGES *
                                       24 * 24 * 64)
  weights = train_events.Histograms('local3/weights')[-1]
  assert weights.histogram_value.num == 6 * 6 * 64 * 384
  assert any('images' in t for t in train_events.Tags()['images'])
  assert train_events.Tags()['graph']
  eval_events = _events(cifar_trained['eval_dir'])
  precision = eval_events.Scalars('Precision @ 1')
  assert [e.step for e in precision] == [cifar_trained['steps']]
  assert precision[0].value > 0.5


def _writer(eval_dir):
  with tf.Graph().as_default():
    return tf.summary.FileWriter(str(eval_dir))


@pytest.mark.parametrize('flip', [False, True])
def test_eval_restores_moving_averages_and_counts_each_example_once(
    tmp_path, capsys, flip):
  # 100 test images of class 3 and 30 of class 5; batch 128 leaves a partial
  # batch of 2. The raw weights say "class 0", the averages "class 3".
  data_dir = cifar_fixtures.write_dataset(
      tmp_path / 'data', records_per_file=2, test_labels=[3] * 100 + [5] * 30)
  path = cifar_fixtures.write_checkpoint(tmp_path / 'train', 42, raw_class=0,
                                         shadow_class=3)
  evaluator = cifar10_eval.Evaluator('test', data_dir, 128, 130, flip=flip)
  assert cifar10_eval.eval_once(evaluator, _writer(tmp_path / 'eval'), path)
  out = capsys.readouterr().out
  assert PRECISION_LINE.findall(out) == ['%.3f' % (100 / 130.)]
  assert re.search(r': evaluated 130 examples in [\d.]+ s \(\d+ examples/sec\) '
                   r'of model\.ckpt-42, step 42$', out, re.M)
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


def test_eval_beside_training_waits_then_scores_each_checkpoint_once(
    tmp_path, capsys):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=2,
                                          test_labels=[3] * 10)
  train_dir = tmp_path / 'train'
  evaluator = cifar10_eval.Evaluator('test', data_dir, 128, 10)
  polls = []
  stop = threading.Event()

  def keep_polling():
    polls.append(time.time())
    return not stop.is_set()

  watcher = threading.Thread(target=cifar10_eval.watch, args=(
      evaluator, _writer(tmp_path / 'eval'), str(train_dir), 0),
                             kwargs=dict(poll_secs=0.05,
                                         keep_polling=keep_polling))
  out = []
  read_log = lambda: ''.join(out) + capsys.readouterr().out
  watcher.start()
  try:
    def saw(predicate):
      out[:] = [read_log()]
      return predicate(out[0])
    _wait_for(lambda: saw(lambda o: 'waiting for the trainer' in o), 60,
              'wait line')
    cifar_fixtures.write_checkpoint(train_dir, 1, raw_class=0, shadow_class=3)
    _wait_for(lambda: saw(lambda o: len(PRECISION_LINE.findall(o)) == 1), 60,
              'first evaluation')
    cifar_fixtures.write_checkpoint(train_dir, 2, raw_class=3, shadow_class=0)
    _wait_for(lambda: saw(lambda o: len(PRECISION_LINE.findall(o)) == 2), 60,
              'second evaluation')
    # Several more polls: neither checkpoint is evaluated again.
    seen = len(polls)
    _wait_for(lambda: len(polls) >= seen + 10, 60, 'ten more polls')
  finally:
    stop.set()
    watcher.join(60)
  assert not watcher.is_alive()
  assert PRECISION_LINE.findall(read_log()) == ['1.000', '0.000']


def test_eval_survives_a_checkpoint_deleted_before_reading(tmp_path):
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


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path,
                                                          run_in_process):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=20)
  train_dir = tmp_path / 'train'
  args = [sys.executable, TRAIN, '--data_dir', data_dir, '--train_dir',
          str(train_dir), '--batch_size', '8', '--save_checkpoint_secs', '1']
  first = subprocess.Popen(args + ['--max_steps', '100000'], cwd=REPO_ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    def checkpoint_step():
      latest = tf.train.latest_checkpoint(str(train_dir))
      return int(latest.rsplit('-', 1)[1]) if latest else 0
    _wait_for(lambda: checkpoint_step() >= 20, 120, 'a checkpoint past step 20')
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  killed_at = checkpoint_step()
  # Whatever the kill interrupted, the latest checkpoint is readable.
  evaluator = cifar10_eval.Evaluator('test', data_dir, 20, 20)
  _, step = evaluator.evaluate(tf.train.latest_checkpoint(str(train_dir)))
  assert step == killed_at
  # The same command resumes (run in this process: a start-up less).
  resumed = run_in_process('cifar10.cifar10_train',
                           args[2:] + ['--max_steps', str(killed_at + 20)])
  assert resumed.returncode == 0, resumed.stderr
  assert 'at step %d' % killed_at in resumed.stdout
  steps = [int(s) for s, _, _, _ in STEP_LINE.findall(resumed.stdout)]
  assert steps and min(steps) > killed_at and max(steps) <= killed_at + 20
  assert checkpoint_step() == killed_at + 20
  # --fresh starts again from step 0.
  fresh = run_in_process('cifar10.cifar10_train',
                         args[2:] + ['--max_steps', '10', '--fresh'])
  assert fresh.returncode == 0, fresh.stderr
  assert 'Resuming' not in fresh.stdout
  assert checkpoint_step() == 10


def _damage(data_dir, damage):
  """Damages a written data set as named; returns the file to blame."""
  batches = os.path.join(data_dir, cifar10_input.BATCHES_DIR)
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
  return bad


@pytest.mark.parametrize('damage, message', [
    ('missing', 'Missing CIFAR-10 file'),
    ('truncated', 'not a positive multiple'),
    ('not_cifar', 'not in the CIFAR-10 binary format'),
    ('empty_dir', 'folder is empty'),
])
def test_bad_data_is_a_clear_error_before_the_graph_runs(tmp_path, damage,
                                                         message):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=3)
  bad = _damage(data_dir, damage)
  with tf.Graph().as_default():
    with pytest.raises(cifar10_input.CifarDataError) as raised:
      cifar10.distorted_inputs(data_dir, 8)
  assert message in str(raised.value) and bad in str(raised.value)


def test_bad_data_stops_the_trainer_with_one_line_not_a_hang(tmp_path,
                                                           run_in_process):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=3)
  bad = _damage(data_dir, 'truncated')
  started = time.time()
  result = run_in_process('cifar10.cifar10_train', [
      '--data_dir', data_dir, '--train_dir', str(tmp_path / 'train'),
      '--max_steps', '5'])
  assert time.time() - started < 60
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr
  assert 'cifar10_train: error:' in result.stderr
  assert 'not a positive multiple' in result.stderr and bad in result.stderr


# The tutorial's way: `python cifar10_eval.py` in cifar10/. The other two
# ways have runs of their own: from the repository root (`python
# cifar10/cifar10_eval.py`), every run_script of the suite, the shared
# fixtures' trainings and evaluation first; the console script pip writes,
# run from another folder, tests/test_commands.py's
# test_installed_console_script_help.
def test_scripts_run_from_inside_cifar10(tmp_path):
  result = run_script(['cifar10_eval.py', '--checkpoint_dir',
                       str(tmp_path / 'none'), '--eval_dir',
                       str(tmp_path / 'eval'), '--data_dir',
                       cifar_fixtures.write_dataset(tmp_path / 'data', 2),
                       '--run_once', '--num_examples', '2'],
                      cwd=os.path.join(REPO_ROOT, 'cifar10'))
  # The folder named is not there: one line, nothing downloaded or created.
  assert result.returncode == 2, result.stderr
  assert result.stderr == (
      'cifar10_eval: error: No checkpoint file found: --checkpoint_dir=%s '
      'does not exist. Pass the --train_dir of a training run (python '
      'cifar10_train.py --train_dir=%s writes one there).\n'
      % (tmp_path / 'none', tmp_path / 'none'))
  assert result.stdout == '' and not (tmp_path / 'eval').exists()


def test_eval_run_once_on_an_empty_folder_says_so_and_creates_nothing(
    tmp_path, run_in_process):
  (tmp_path / 'train').mkdir()
  result = run_in_process('cifar10.cifar10_eval', [
      '--checkpoint_dir', str(tmp_path / 'train'), '--run_once',
      '--eval_dir', str(tmp_path / 'eval'), '--data_dir', str(tmp_path)])
  assert result.returncode == 2
  assert result.stderr.startswith('cifar10_eval: error: No checkpoint file '
                                  'found: no checkpoint in %s.'
                                  % (tmp_path / 'train'))
  assert sorted(os.listdir(str(tmp_path))) == ['train']


def test_eval_flip_scores_a_trained_model_like_plain_eval(cifar_trained):
  evaluator = cifar10_eval.Evaluator('test', cifar_trained['data_dir'], 128,
                                     200, flip=True)
  flipped, _ = evaluator.evaluate(
      tf.train.latest_checkpoint(str(cifar_trained['train_dir'])))
  plain = float(PRECISION_LINE.findall(cifar_trained['evaluation'].stdout)[0])
  assert flipped > 0.5 and abs(flipped - plain) < 0.15
  assert 'evaluated 200 examples' in cifar_trained['evaluation'].stdout


def test_fast_schedule_stops_at_its_end(cifar_trained, tmp_path,
                                        run_in_process):
  # 0.032 epochs of 16-image batches: ceil(0.032 * 50000 / 16) = 100 steps.
  train_dir = tmp_path / 'fast'
  fast = run_in_process('cifar10.cifar10_train', [
                     '--data_dir', cifar_trained['data_dir'],
                     '--train_dir', str(train_dir), '--batch_size', '16',
                     '--schedule=fast', '--fast_epochs', '0.032',
                     '--save_summaries_steps', '25'])
  assert fast.returncode == 0, fast.stderr
  steps = [int(s) for s, _, _, _ in STEP_LINE.findall(fast.stdout)]
  assert steps[-1] == 100
  assert tf.train.latest_checkpoint(str(train_dir)).endswith('-100')
  rates = {e.step: e.value for e in _events(train_dir).Scalars('learning_rate')}
  assert max(rates.values()) <= 0.02 + 1e-6
  # Past the 15-step warm-up the rate falls towards zero.
  falling = [rate for step, rate in sorted(rates.items()) if step > 20]
  assert len(falling) >= 3 and falling[-1] > 0
  assert all(a > b for a, b in zip(falling, falling[1:]))


def test_fast_schedule_cannot_resume_a_tutorial_run(tmp_path):
  # A tutorial checkpoint has no momentum to resume the fast schedule from.
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    loss = cifar10.loss(cifar10.inference(tf.zeros([2, 24, 24, 3])),
                        tf.constant([0, 1]))
    cifar10.train(loss, global_step, cifar10.TrainSettings(
        schedule=schedules.Schedule('tutorial', 64)))
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      tutorial = tf.train.Saver().save(session, str(tmp_path / 'model.ckpt'),
                                       global_step=global_step)
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    schedule = schedules.Schedule('fast', 64)
    loss = cifar10.loss(cifar10.inference(tf.zeros([2, 24, 24, 3])),
                        tf.constant([0, 1]), schedule.label_smoothing)
    cifar10.train(loss, global_step, cifar10.TrainSettings(schedule=schedule))
    with pytest.raises(training.CheckpointMismatchError) as raised:
      training.check_resumable(tutorial)
  message = str(raised.value)
  assert message.startswith('Cannot resume from %s: it has no ' % tutorial)
  assert 'Momentum' in message and '--fresh' in message
  # The same graph with the tutorial's schedule resumes it.
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    loss = cifar10.loss(cifar10.inference(tf.zeros([2, 24, 24, 3])),
                        tf.constant([0, 1]))
    cifar10.train(loss, global_step, cifar10.TrainSettings(
        schedule=schedules.Schedule('tutorial', 64)))
    training.check_resumable(tutorial)


class _OpCount(tf.train.SessionRunHook):
  """Counts the graph's ops after each step; at the 10th, tries to add one."""

  def after_create_session(self, session, coord):
    self.graph = session.graph
    self.counts = [len(self.graph.get_operations())]
    self.finalized, self.refused = None, None

  def after_run(self, run_context, run_values):
    self.counts.append(len(self.graph.get_operations()))
    if len(self.counts) == 10:
      self.finalized = self.graph.finalized
      try:
        with self.graph.as_default():
          tf.constant(1.0)
      except RuntimeError as e:
        self.refused = str(e)


def test_training_graph_is_finalized_and_its_op_count_fixed(
    cifar_trained, tmp_path, run_in_process, monkeypatch):
  hook = _OpCount()
  monkeypatch.setattr(cifar10_train, 'train', functools.partial(
      cifar10_train.train, extra_hooks=[hook]))
  result = run_in_process('cifar10.cifar10_train', [
      '--data_dir', cifar_trained['data_dir'], '--train_dir', str(tmp_path),
      '--max_steps', '12', '--batch_size', '16', '--save_summaries_steps', '5'])
  assert result.returncode == 0, result.stderr
  assert hook.finalized and len(hook.counts) - 1 == 12
  # The whole training graph, the same after every step.
  assert min(hook.counts) == max(hook.counts) > 500
  refused = hook.refused or ''
  assert 'finalized' in refused


@pytest.mark.parametrize('flip', [False, True])
def test_multi_crop_evaluation_is_reported_beside_the_central_crop(
    tmp_path, capsys, flip):
  """--eval_crops=5 scores the central crop (the tutorial's figure, printed
  and summarised as always) and, from the same pass, the five crops averaged
  (a line and a summary of their own). A model that answers by the top-left
  pixel's colour sees the difference: the corner crops see that pixel."""
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=2,
                                          test_labels=[3] * 40)
  path = cifar_fixtures.write_checkpoint(tmp_path / 'train', 9, shadow_class=3)
  evaluator = cifar10_eval.Evaluator('test', data_dir, 16, 40, flip=flip,
                                     crops=5)
  assert cifar10_eval.eval_once(evaluator, _writer(tmp_path / 'eval'), path)
  out = capsys.readouterr().out
  assert PRECISION_LINE.findall(out) == ['1.000']
  assert re.search(r': precision @ 1 = 1\.000 over 5 crops$', out, re.M)
  events = _events(tmp_path / 'eval')
  assert events.Scalars('Precision @ 1')[0].value == 1.0
  assert events.Scalars(cifar10_eval.CROPS_TAG)[0].value == 1.0
  assert events.Scalars(cifar10_eval.CROPS_TAG)[0].step == 9


def test_the_views_of_multi_crop_evaluation_are_the_crops_and_mirrors():
  """view_probabilities runs each view through the network once: the
  central crop first (its rows are the images themselves), the corners, then
  the mirrors; class_probabilities averages them."""
  rng = np.random.RandomState(3)
  images = rng.randint(0, 256, (2, 32, 32, 3)).astype(np.float32)
  with tf.Graph().as_default():
    crops = cifar10_input.eval_images(tf.constant(images), crops=5)
    views = cifar10.view_probabilities(crops, flip=True)
    tf.get_variable_scope().reuse_variables()
    average = cifar10.class_probabilities(crops, flip=True)
    singles = []
    for mirror in (False, True):
      for y, x in cifar10_input.CROP_OFFSETS:
        crop = images[:, y:y + 24, x:x + 24]
        crop = crop[:, :, ::-1] if mirror else crop
        singles.append(tf.nn.softmax(cifar10.inference(
            tf.image.per_image_standardization(tf.constant(crop.copy())))))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      views_v, average_v, singles_v = sess.run([views, average, singles])
  assert views_v.shape == (10, 2, 10)
  np.testing.assert_allclose(views_v, np.stack(singles_v), rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_allclose(average_v, views_v.mean(axis=0), rtol=1e-5)
