"""The training loop every CIFAR-10 trainer shares.

cifar10_train.py, cifar10_multi_gpu_train.py and cifar10_distributed_train.py
build their graphs and hand the train op to run_training, which resumes from
the latest checkpoint, logs, writes summaries and checkpoints, and stops at
the last step or on a NaN loss. The settings come in as arguments
(LoopSettings; cifar10_flags.loop_settings() reads them from the flags).
"""
import collections
import os
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


class _PromptWorkerSessionCreator(tf.train.WorkerSessionCreator):
  """A cluster worker's session creator that polls every WORKER_POLL_SECS."""

  def _get_session_manager(self):
    if not self._session_manager:
      self._session_manager = tf.train.SessionManager(
          local_init_op=self._scaffold.local_init_op,
          local_init_feed_dict=self._scaffold.local_init_feed_dict,
          ready_op=self._scaffold.ready_op,
          ready_for_local_init_op=self._scaffold.ready_for_local_init_op,
          graph=tf.get_default_graph(), recovery_wait_secs=WORKER_POLL_SECS)
    return self._session_manager


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
  """Raises CheckpointMismatchError if checkpoint cannot restore this graph.

  A checkpoint of the tutorial's schedule has no momentum slots for
  --schedule=fast to restore; say so instead of failing inside TensorFlow.
  """
  saved = set(name for name, _ in tf.train.list_variables(checkpoint))
  missing = sorted(v.op.name for v in tf.global_variables()
                   if v.op.name not in saved)
  if missing:
    raise CheckpointMismatchError(
        'Cannot resume from %s: it has no %s (it was written by another '
        '--schedule or model). Pass --fresh to start over, or another '
        '--train_dir.' % (checkpoint, ', '.join(missing[:3]) +
                          (' ...' if len(missing) > 3 else '')))


def run_training(train_op, loss, examples_per_step, settings, last_step=None,
                 num_towers=1, scaffold=None, config=None, master='',
                 is_chief=True, extra_hooks=()):
  """Runs train_op until last_step: the loop every CIFAR-10 trainer shares.

  Resumes from the latest checkpoint in settings.train_dir, stops at
  last_step (default settings.max_steps), stops on a NaN loss, logs every
  settings.log_frequency steps, and writes summaries and checkpoints there
  (the chief does, in a cluster; master is its address). The graph is
  finalized before the first step, so nothing can add ops inside the loop.
  Ctrl-C or SIGTERM stops it after the current step with a checkpoint of
  that step, raising interrupts.Interrupted (the command's one line).

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
  latest = checkpoints.find_checkpoint(settings.train_dir)
  if latest:
    check_resumable(latest)
    step = tf.train.load_variable(latest, 'global_step')
    print('Resuming from %s at step %d (use --fresh to start over).' %
          (latest, step))
    if step >= last_step:
      print('Already at step %d, the last: nothing to train.' % last_step)

  hooks = loop_hooks(loss, examples_per_step, settings.log_frequency,
                     last_step, num_towers) + list(extra_hooks)
  if config is None:
    config = tf.ConfigProto()
  config.log_device_placement = settings.log_device_placement
  if not getattr(threading.excepthook, 'quiet_after_close', False):
    threading.excepthook = _quiet_after_close(threading.excepthook)
  _session_closing.clear()
  if is_chief:
    session = tf.train.MonitoredTrainingSession(
        master=master,
        is_chief=True,
        checkpoint_dir=settings.train_dir,
        hooks=hooks,
        scaffold=scaffold,
        save_checkpoint_secs=settings.save_checkpoint_secs,
        save_summaries_steps=settings.save_summaries_steps,
        log_step_count_steps=None,
        stop_grace_period_secs=STOP_GRACE_PERIOD_SECS,
        config=config)
  else:
    # What MonitoredTrainingSession builds for a non-chief, polling sooner.
    session = tf.train.MonitoredSession(
        session_creator=_PromptWorkerSessionCreator(
            scaffold=scaffold, master=master, config=config),
        hooks=hooks, stop_grace_period_secs=STOP_GRACE_PERIOD_SECS)
  try:
    with interrupts.StopRequests() as stop:
      with session as mon_sess:
        try:
          while not mon_sess.should_stop() and not stop.requested:
            mon_sess.run(train_op)
          if stop.requested:
            # Ctrl-C or SIGTERM between two steps: keep the steps since the
            # last checkpoint (the chief writes them; in a cluster the others
            # keep none).
            with stop.saving():
              step, path = mon_sess.run_step_fn(
                  lambda step_context: _save(step_context.session,
                                             settings.train_dir, is_chief))
        finally:
          # From here the session closes, cancelling what its queue runners
          # wait for: their errors say only that.
          _session_closing.set()
  except Exception as e:  # pylint: disable=broad-except
    # A full disk or a read-only train_dir: one line, and the last
    # checkpoint (which the checkpoint state still names) to resume from.
    failure = checkpoints.save_failed(e, settings.train_dir)
    if failure is None:
      raise
    raise failure from None
  finally:
    # Let queue runners that outlived the session end now, while the hook
    # above still applies: past interpreter shutdown Python prints their
    # errors with its default hook.
    deadline = time.time() + STOP_GRACE_PERIOD_SECS  # for all, not each
    for thread in threading.enumerate():
      if thread.name.startswith('QueueRunnerThread'):
        thread.join(max(0.0, deadline - time.time()))
  if stop.requested:
    raise interrupts.Interrupted(stop.signal_number,
                                 interrupts.resume_message(step, path))


def _save(session, train_dir, is_chief):
  """(global step, checkpoint path or None) of a checkpoint saved now."""
  step = session.run(tf.train.get_global_step())
  if not is_chief:
    return step, None
  saver = tf.get_collection(tf.GraphKeys.SAVERS)[0]
  return step, saver.save(session, os.path.join(train_dir, 'model.ckpt'),
                          global_step=step)


def prepare_train_dir(train_dir, fresh=False):
  """With fresh, deletes train_dir; otherwise keeps it so training resumes."""
  if fresh and tf.gfile.Exists(train_dir):
    tf.gfile.DeleteRecursively(train_dir)
  tf.gfile.MakeDirs(train_dir)
  print('Checkpoints and summaries go to %s; to watch training, run '
        '`tensorboard --logdir=%s`.' % (train_dir, train_dir))


def train_main(train_fn, train_dir, data_dir, fresh=False):
  """What every trainer's main() does around its train_fn.

  Downloads the data to data_dir if it is not there, prepares train_dir (see
  prepare_train_dir), runs train_fn(), and turns a NaN loss into a
  CommandError.
  """
  # The data first: a download that fails leaves no empty train_dir.
  cifar10_input.maybe_download_and_extract(data_dir)
  prepare_train_dir(train_dir, fresh)
  try:
    train_fn()
  except tf.train.NanLossDuringTrainingError:
    raise CommandError('Model diverged with loss = NaN')
