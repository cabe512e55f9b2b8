"""The training loop every CIFAR-10 trainer shares.

cifar10_train.py, cifar10_multi_gpu_train.py and cifar10_distributed_train.py
build their graphs and hand the train op to run_training, which resumes from
the latest checkpoint, logs, writes summaries and checkpoints, and stops at
the last step or on a NaN loss. The settings come in as arguments
(LoopSettings; cifar10_flags.loop_settings() reads them from the flags).
"""
import collections
import os
import re
import shutil
import sys
import threading
import time
from datetime import datetime

import tensorflow.compat.v1 as tf

from cifar10 import cifar10_input
from cifar10 import schedules
from tutorials_common import checkpoints
from tutorials_common import files
from tutorials_common import interrupts
from tutorials_common.errors import CommandError
from tutorials_common.errors import UsageError

# How the loop runs; the defaults are the trainers' flags' defaults.
LoopSettings = collections.namedtuple('LoopSettings', [
    'train_dir',             # Where checkpoints and summaries go.
    'max_steps',             # The step to stop at, counted across resumes.
    'log_frequency',         # Steps between log lines.
    'save_checkpoint_secs',  # Seconds between checkpoints.
    'save_summaries_steps',  # Steps between TensorBoard summaries.
    'log_device_placement',  # Whether TensorFlow logs where ops run.
])
LoopSettings.__new__.__defaults__ = ('/tmp/cifar10_train', 1000000, 10, 600,
                                     100, False)

# A cluster chief's token queue runner never ends by itself: how long the
# loop waits for it at the end (TensorFlow's default is 2 minutes).
STOP_GRACE_PERIOD_SECS = 3
# How often a cluster worker looks again for the chief's initialised model.
# TensorFlow's SessionManager waits 30 s between looks, so a worker started
# beside its chief idled half a minute (and, with SyncReplicasOptimizer, kept
# the chief waiting as long).
WORKER_POLL_SECS = 1


class _PromptWorkerSessionCreator(tf.train.SessionCreator):
  """A cluster worker's session: what tf.train.WorkerSessionCreator makes,
  looking for the chief's initialised model every WORKER_POLL_SECS (its own
  wait between looks is 30 s and has no public setting)."""

  def __init__(self, scaffold, master, config):
    self._scaffold = scaffold or tf.train.Scaffold()
    self._master = master
    self._config = config

  def create_session(self):
    self._scaffold.finalize()
    return tf.train.SessionManager(
        local_init_op=self._scaffold.local_init_op,
        local_init_feed_dict=self._scaffold.local_init_feed_dict,
        ready_op=self._scaffold.ready_op,
        ready_for_local_init_op=self._scaffold.ready_for_local_init_op,
        graph=tf.get_default_graph(),
        recovery_wait_secs=WORKER_POLL_SECS).wait_for_session(
            self._master, config=self._config)


_session_closing = threading.Event()


def _quiet_after_close(previous_hook):
  """threading.excepthook, less the queue runners' errors once the session
  closes: a cluster chief's token queue runner outlives the session it
  fed and fails as the process exits; its traceback is not the user's."""

  def hook(args):
    if not (_session_closing.is_set() and args.thread is not None and
            args.thread.name.startswith('QueueRunnerThread')):
      previous_hook(args)

  hook.quiet_after_close = True
  return hook


class CheckpointMismatchError(UsageError):
  """The checkpoint to resume from lacks variables this graph has."""


class _LoggerHook(tf.train.SessionRunHook):
  """Logs loss and runtime.

  examples_per_step counts the images of all towers; sec/batch is per tower,
  as the tutorial's multi-GPU script reported it.
  """

  def __init__(self, loss, examples_per_step, log_frequency, num_towers=1):
    self._loss = loss
    self._examples_per_step = examples_per_step
    self._log_frequency = log_frequency
    self._num_towers = num_towers

  def after_create_session(self, session, coord):
    self._step = session.run(tf.train.get_global_step())
    self._start_time = time.time()

  def before_run(self, run_context):
    self._step += 1
    return tf.train.SessionRunArgs(self._loss)  # Asks for loss value.

  def after_run(self, run_context, run_values):
    if self._step % self._log_frequency == 0:
      current_time = time.time()
      duration = current_time - self._start_time
      self._start_time = current_time

      loss_value = run_values.results
      examples_per_sec = (self._log_frequency * self._examples_per_step /
                          duration)
      sec_per_batch = float(duration / self._log_frequency / self._num_towers)

      format_str = ('%s: step %d, loss = %.2f (%.1f examples/sec; %.3f '
                    'sec/batch)')
      print(format_str % (datetime.now(), self._step, loss_value,
                          examples_per_sec, sec_per_batch))
      sys.stdout.flush()


def loop_hooks(loss, examples_per_step, log_frequency, last_step,
               num_towers=1):
  """The hooks of every trainer's loop: stop at last_step, stop on a NaN
  loss, and the tutorial's log line every log_frequency steps."""
  return [tf.train.StopAtStepHook(last_step=last_step),
          tf.train.NanTensorHook(loss),
          _LoggerHook(loss, examples_per_step, log_frequency, num_towers)]


def schedule_and_last_step(name, examples_per_step, fast_epochs, max_steps):
  """The schedule `name` for this many images per step, and its last step.

  The last step is max_steps, or the schedule's end where that comes first.
  """
  schedule = schedules.Schedule(name, examples_per_step, fast_epochs)
  last_step = max_steps
  if schedule.last_step is not None:
    last_step = min(last_step, schedule.last_step)
  return schedule, last_step


def check_resumable(checkpoint):
  """Raises CheckpointMismatchError if checkpoint cannot resume this graph.

  A checkpoint of the tutorial's schedule has no momentum slots for
  --schedule=fast to restore, and resuming a fast schedule's checkpoint
  with the tutorial's would silently drop them (its next checkpoint lacks
  them for good): either way, say so instead of failing inside TensorFlow
  or losing the momentum.
  """
  saved = set(name for name, _ in tf.train.list_variables(checkpoint))
  graph = set(v.op.name for v in tf.global_variables())
  missing = sorted(graph - saved)
  # The optimizer's slots: a checkpoint's loss scale (mixed_float16) may be
  # left behind by a float32 run, its momentum may not.
  dropped = sorted(name for name in saved - graph
                   if name.endswith('/Momentum'))
  if not (missing or dropped):
    return
  names = missing or dropped
  listed = ', '.join(names[:3]) + (' ...' if len(names) > 3 else '')
  if missing:
    why = 'it has no %s (it was written by another --schedule or model)' % listed
  else:
    why = ('it holds %s, which this --schedule does not train (it was '
           'written by a schedule with momentum)' % listed)
  raise CheckpointMismatchError(
      'Cannot resume from %s: %s. Resume it with its own --schedule, pass '
      '--fresh to start over, or choose another --train_dir.'
      % (checkpoint, why))


def check_resume(train_dir, last_step):
  """Where a run on train_dir starts: says so, and returns False when it is
  at last_step already (nothing to train: then nothing is written).

  Raises a UsageError for a checkpoint this graph cannot resume (see
  check_resumable) or one whose weights are not finite.
  """
  latest = checkpoints.find_checkpoint(train_dir)
  if not latest:
    return True
  checkpoints.require_finite(latest, what='resume from it')
  check_resumable(latest)
  step = tf.train.load_variable(latest, 'global_step')
  print('Resuming from %s at step %d (use --fresh to start over).' %
        (latest, step))
  if step >= last_step:
    print('Already at step %d, the last: nothing to train.' % last_step)
    return False
  return True


class DivergedError(CommandError):
  """The model's weights or loss stopped being finite."""


def _all_finite():
  """An op: whether every float variable (weights, their moving averages,
  the optimizer's slots) holds finite values only."""
  floats = [v for v in tf.global_variables() if v.dtype.base_dtype.is_floating]
  return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v))
                                 for v in floats]), name='all_finite')


def _check_finite(session, all_finite, step, train_dir):
  """Raises DivergedError naming the last good checkpoint unless the
  weights are finite: checked before every save, so that the latest
  checkpoint is always one evaluation can use."""
  if not session.run(all_finite):
    raise DivergedError(diverged_message(
        'weights that are not finite at step %d' % step, train_dir))


class _FiniteWeightsBeforeSave(tf.train.CheckpointSaverListener):
  """Stops the run before a checkpoint of weights that are not finite."""

  def __init__(self, all_finite, train_dir):
    self._all_finite = all_finite
    self._train_dir = train_dir

  def before_save(self, session, global_step_value):
    _check_finite(session, self._all_finite, global_step_value,
                  self._train_dir)


def diverged_message(what, train_dir):
  """The one line of a run that diverged: what went wrong (after the
  tutorial's 'Model diverged with'), and the checkpoint to go back to."""
  latest = checkpoints.find_checkpoint(train_dir)
  if latest:
    then = ('the latest checkpoint, %s, is from before: run the same command '
            'to resume from it, or pass --fresh to start over'
            % os.path.basename(latest))
  else:
    then = 'no checkpoint was saved: run again, perhaps with another --schedule'
  return 'Model diverged with %s; %s.' % (what, then)


def _monitored_session(hooks, settings, all_finite, scaffold, config, master,
                       is_chief):
  """The loop's session: the chief's restores, saves checkpoints (once
  all_finite says the weights are) and summaries; a worker's waits for the
  chief's model."""
  if not is_chief:
    return tf.train.MonitoredSession(
        session_creator=_PromptWorkerSessionCreator(scaffold, master, config),
        hooks=hooks, stop_grace_period_secs=STOP_GRACE_PERIOD_SECS)
  scaffold = scaffold or tf.train.Scaffold()
  saver_hook = tf.train.CheckpointSaverHook(
      settings.train_dir, save_secs=settings.save_checkpoint_secs,
      scaffold=scaffold,
      listeners=[_FiniteWeightsBeforeSave(all_finite, settings.train_dir)])
  return tf.train.MonitoredTrainingSession(
      master=master,
      is_chief=True,
      checkpoint_dir=settings.train_dir,
      hooks=hooks,
      chief_only_hooks=[saver_hook],
      scaffold=scaffold,
      # The saver hook above saves: none of MonitoredTrainingSession's own.
      save_checkpoint_secs=None,
      save_checkpoint_steps=None,
      save_summaries_steps=settings.save_summaries_steps,
      log_step_count_steps=None,
      stop_grace_period_secs=STOP_GRACE_PERIOD_SECS,
      config=config)


def _run_until_stopped(session, train_op, train_dir, all_finite, is_chief):
  """Runs train_op until the hooks stop the loop or Ctrl-C/SIGTERM asks to;
  on a request, saves a checkpoint of the current step and raises
  interrupts.Interrupted."""
  with interrupts.StopRequests() as stop:
    with session as mon_sess:
      try:
        while not mon_sess.should_stop() and not stop.requested:
          mon_sess.run(train_op)
        if stop.requested:
          # The chief keeps the steps since the last checkpoint; in a cluster
          # the others keep none.
          raise interrupts.stopped_and_saved(
              stop, lambda: mon_sess.run_step_fn(
                  lambda step_context: _save(step_context.session, train_dir,
                                             all_finite, is_chief)))
      finally:
        # From here the session closes, cancelling what its queue runners
        # wait for: their errors say only that.
        _session_closing.set()


def _join_queue_runners():
  """Lets queue runners that outlived the session end now, while the quiet
  excepthook still applies: past interpreter shutdown Python prints their
  errors with its default hook."""
  deadline = time.time() + STOP_GRACE_PERIOD_SECS  # for all, not each
  for thread in threading.enumerate():
    if thread.name.startswith('QueueRunnerThread'):
      thread.join(max(0.0, deadline - time.time()))


def run_training(train_op, loss, examples_per_step, settings, last_step=None,
                 num_towers=1, scaffold=None, config=None, master='',
                 is_chief=True, extra_hooks=()):
  """Runs train_op until last_step: the loop every CIFAR-10 trainer shares.

  Resumes from the latest checkpoint in settings.train_dir, stops at
  last_step (default settings.max_steps), stops on a NaN loss, logs every
  settings.log_frequency steps, and writes summaries and checkpoints there
  (the chief does, in a cluster; master is its address), never a checkpoint
  of weights that are not finite. The graph is finalized before the first
  step, so nothing can add ops inside the loop. Ctrl-C or SIGTERM stops it
  after the current step with a checkpoint of that step, raising
  interrupts.Interrupted (the command's one line).

  Args:
    train_op, loss: from cifar10.train and cifar10.loss (or the towers').
    examples_per_step: images per step over all towers, for the log line.
    settings: a LoopSettings.
    last_step: the step to stop at (default settings.max_steps).
    num_towers: towers per step; the log's sec/batch is per tower.
    scaffold, config, master, is_chief: MonitoredTrainingSession's.
    extra_hooks: more SessionRunHooks, such as a SyncReplicasOptimizer's.
  """
  if last_step is None:
    last_step = settings.max_steps
  if is_chief:
    # What a save cut short by a kill left half-written: never a checkpoint
    # (the checkpoint state names only complete ones), only space taken.
    files.remove_unfinished(settings.train_dir)
  if not check_resume(settings.train_dir, last_step):
    return
  hooks = loop_hooks(loss, examples_per_step, settings.log_frequency,
                     last_step, num_towers) + list(extra_hooks)
  config = config or tf.ConfigProto()
  config.log_device_placement = settings.log_device_placement
  if not getattr(threading.excepthook, 'quiet_after_close', False):
    threading.excepthook = _quiet_after_close(threading.excepthook)
  _session_closing.clear()
  all_finite = _all_finite()
  session = _monitored_session(hooks, settings, all_finite, scaffold, config,
                               master, is_chief)
  try:
    _run_until_stopped(session, train_op, settings.train_dir, all_finite,
                       is_chief)
  except tf.train.NanLossDuringTrainingError:
    raise DivergedError(diverged_message('loss = NaN', settings.train_dir))
  except Exception as e:  # pylint: disable=broad-except
    # A full disk or a read-only train_dir: one line, and the last
    # checkpoint (which the checkpoint state still names) to resume from.
    failure = checkpoints.save_failed(e, settings.train_dir)
    if failure is None:
      raise
    raise failure from None
  finally:
    _join_queue_runners()


def _save(session, train_dir, all_finite, is_chief):
  """(global step, checkpoint path or None) of a checkpoint saved now."""
  step = session.run(tf.train.get_global_step())
  if not is_chief:
    return step, None
  _check_finite(session, all_finite, step, train_dir)
  saver = tf.get_collection(tf.GraphKeys.SAVERS)[0]
  return step, saver.save(session, os.path.join(train_dir, 'model.ckpt'),
                          global_step=step)


# What a trainer writes in --train_dir, which --fresh may remove: the
# checkpoint state, checkpoints, TensorBoard's events and the graph, and
# what a save cut short leaves (files.remove_unfinished's names).
_TRAINER_FILE = re.compile(
    r'^(checkpoint|graph\.pbtxt|events\.out\.tfevents\.[\w.-]+|'
    r'model\.ckpt-\d+(\.index|\.meta|\.data-\d{5}-of-\d{5})?)$')


def _is_trainers(folder, name):
  path = os.path.join(folder, name)
  if os.path.islink(path):
    return False
  if _TRAINER_FILE.match(name):
    return os.path.isfile(path)
  return name in files.unfinished_names(folder)


def _refuse_fresh(train_dir, data_dir):
  """The UsageError of a --fresh that would remove what no trainer wrote,
  or None."""
  train_dir = os.path.realpath(train_dir)
  data = os.path.realpath(data_dir) if data_dir else None
  if data and (data == train_dir or data.startswith(train_dir + os.sep)):
    return UsageError(
        '--fresh would remove --train_dir=%s, which holds --data_dir=%s: '
        'choose a --train_dir of its own.' % (train_dir, data_dir))
  others = [name for name in sorted(os.listdir(train_dir))
            if not _is_trainers(train_dir, name)]
  if others:
    return UsageError(
        '--fresh removes only what a trainer wrote, and --train_dir=%s also '
        'holds %s: choose another --train_dir, or move %s away first.'
        % (train_dir, ', '.join(others[:3]) + (' ...' if len(others) > 3
                                               else ''),
           'it' if len(others) == 1 else 'them'))
  return None


def prepare_train_dir(train_dir, fresh=False, data_dir=None):
  """Makes train_dir; with fresh, first removes what a trainer wrote there.

  A --fresh that would remove anything else (a file no trainer writes, a
  folder, the data) is refused with a UsageError before anything is removed.
  """
  if fresh and os.path.isdir(train_dir):
    refusal = _refuse_fresh(train_dir, data_dir)
    if refusal:
      raise refusal
    for name in sorted(os.listdir(train_dir)):
      path = os.path.join(train_dir, name)
      if os.path.isdir(path):
        shutil.rmtree(path)
      else:
        os.remove(path)
  elif fresh and os.path.lexists(train_dir):
    raise UsageError('--train_dir=%s is not a folder; --fresh removes only '
                     'a trainer\'s folder.' % train_dir)
  tf.gfile.MakeDirs(train_dir)
  print('Checkpoints and summaries go to %s; to watch training, run '
        '`tensorboard --logdir=%s`.' % (train_dir, train_dir))


def train_main(train_fn, train_dir, data_dir, fresh=False):
  """What every trainer's main() does around its train_fn.

  Checks a --fresh before anything else, downloads the data to data_dir if
  it is not there, prepares train_dir (see prepare_train_dir) and runs
  train_fn().
  """
  if fresh and os.path.isdir(train_dir):
    refusal = _refuse_fresh(train_dir, data_dir)
    if refusal:
      raise refusal
  # The data first: a download that fails leaves no empty train_dir.
  cifar10_input.maybe_download_and_extract(data_dir)
  prepare_train_dir(train_dir, fresh, data_dir)
  train_fn()
