"""A binary to train CIFAR-10 using a single GPU or the CPU.

Run it (from this folder, from the repository root as cifar10/cifar10_train.py,
or as the console script cifar10_train after `pip install -e .`):

  python cifar10_train.py --data_dir=/tmp/cifar10_data --train_dir=/tmp/cifar10_train

and, beside it, `python cifar10_eval.py` and `tensorboard --logdir=/tmp`.

Accuracy: with the tutorial's schedule (the default), about the tutorial's
0.86 precision @ 1 after 100K steps (256 epochs); --schedule=fast gets there
in far fewer epochs. --precision=mixed_bfloat16 computes in bfloat16 on CPUs
with bfloat16 units. The README (Time to accuracy, Speed, Mixed precision)
has the measured curves and speeds, each with the machine it came from.

Unlike the tutorial, this does not delete --train_dir: it resumes from the
latest checkpoint there (the global step continues). Use --fresh to start over.
Checkpoints are written atomically, so killing the trainer at any moment leaves
the previous checkpoint readable by cifar10_eval.py.
"""
import os
import sys
import time
from datetime import datetime

if __package__ in (None, ''):
  # Run as a file: make the packages importable from the repo root.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cli_support import entry  # First: it quiets TensorFlow's start-up.
from tutorials_common.errors import CommandError
from tutorials_common.errors import UsageError
from absl import flags
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import cifar10_input

FLAGS = flags.FLAGS


def define_flags():
  cifar10.define_flags()
  cifar10.define_schedule_flags()
  cifar10.define_precision_flag()
  flags.DEFINE_string('train_dir', '/tmp/cifar10_train',
                      'Directory where to write event logs and checkpoints.')
  entry.require_folder('train_dir')
  flags.DEFINE_integer('max_steps', 1000000,
                       'Number of batches to run (steps, counted across '
                       'resumed runs).', lower_bound=0)
  flags.DEFINE_boolean('log_device_placement', False,
                       'Whether to log device placement (true/false).')
  flags.DEFINE_integer('log_frequency', 10,
                       'How often to log results to the console (steps).',
                       lower_bound=1)
  flags.DEFINE_boolean('fresh', False,
                       'Delete --train_dir and start from step 0 instead of '
                       'resuming from its latest checkpoint (true/false).')
  flags.DEFINE_integer('save_checkpoint_secs', 600,
                       'How often to save a checkpoint (seconds); one is '
                       'always saved at the last step.', lower_bound=1)
  flags.DEFINE_integer('save_summaries_steps', 100,
                       'How often to write TensorBoard summaries (steps).',
                       lower_bound=1)


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


class CheckpointMismatchError(UsageError):
  """The checkpoint to resume from lacks variables this graph has."""


def schedule_from_flags(examples_per_step):
  """The --schedule for this many images per step, and the step to stop at."""
  schedule = cifar10.Schedule(FLAGS.schedule, examples_per_step,
                              FLAGS.fast_epochs)
  last_step = FLAGS.max_steps
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


def run_training(train_op, loss, examples_per_step, num_towers=1,
                 scaffold=None, config=None, master='', is_chief=True,
                 extra_hooks=(), last_step=None):
  """The training loop every CIFAR-10 trainer shares.

  Resumes from the latest checkpoint in --train_dir, stops at last_step
  (default --max_steps), stops on a NaN loss, logs every --log_frequency
  steps, and writes summaries and checkpoints there (the chief does, in a
  cluster; master is its address). The graph is finalized before the first
  step, so nothing can add ops inside the loop.
  """
  if last_step is None:
    last_step = FLAGS.max_steps
  latest = tf.train.latest_checkpoint(FLAGS.train_dir)
  if latest:
    check_resumable(latest)
    step = tf.train.load_variable(latest, 'global_step')
    print('Resuming from %s at step %d (use --fresh to start over).' %
          (latest, step))
    if step >= last_step:
      print('Already at step %d, the last: nothing to train.' % last_step)

  hooks = [tf.train.StopAtStepHook(last_step=last_step),
           tf.train.NanTensorHook(loss),
           _LoggerHook(loss, examples_per_step, FLAGS.log_frequency,
                       num_towers)] + list(extra_hooks)
  if config is None:
    config = tf.ConfigProto()
  config.log_device_placement = FLAGS.log_device_placement
  with tf.train.MonitoredTrainingSession(
      master=master,
      is_chief=is_chief,
      checkpoint_dir=FLAGS.train_dir,
      hooks=hooks,
      scaffold=scaffold,
      save_checkpoint_secs=FLAGS.save_checkpoint_secs,
      save_summaries_steps=FLAGS.save_summaries_steps,
      log_step_count_steps=None,
      # A cluster chief's token queue runner never ends by itself: don't
      # wait the default 2 minutes for it at the end.
      stop_grace_period_secs=10,
      config=config) as mon_sess:
    while not mon_sess.should_stop():
      mon_sess.run(train_op)


def train(extra_hooks=()):
  """Train CIFAR-10 for a number of steps (extra_hooks watch the loop)."""
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    schedule, last_step = schedule_from_flags(FLAGS.batch_size)

    # Get images and labels for CIFAR-10.
    # Force input pipeline to CPU:0 to avoid operations sometimes ending up on
    # GPU and resulting in a slow down.
    with tf.device('/cpu:0'):
      images, labels = cifar10.distorted_inputs(FLAGS.data_dir,
                                                FLAGS.batch_size,
                                                FLAGS.use_fp16)

    # Build a Graph that computes the logits predictions from the
    # inference model.
    logits = cifar10.inference(images, precision=FLAGS.precision)

    # Calculate loss.
    loss = cifar10.loss(logits, labels, schedule.label_smoothing)

    # Build a Graph that trains the model with one batch of examples and
    # updates the model parameters.
    train_op = cifar10.train(loss, global_step, FLAGS.batch_size, schedule,
                             precision=FLAGS.precision)

    run_training(train_op, loss, FLAGS.batch_size, last_step=last_step,
                 extra_hooks=extra_hooks)


def prepare_train_dir():
  """Honours --fresh; otherwise keeps --train_dir so training resumes."""
  if FLAGS.fresh and tf.gfile.Exists(FLAGS.train_dir):
    tf.gfile.DeleteRecursively(FLAGS.train_dir)
  tf.gfile.MakeDirs(FLAGS.train_dir)
  print('Checkpoints and summaries go to %s; to watch training, run '
        '`tensorboard --logdir=%s`.' % (FLAGS.train_dir, FLAGS.train_dir))


def train_main(train_fn):
  """What every trainer's main() does around its train_fn."""
  prepare_train_dir()
  cifar10_input.maybe_download_and_extract(FLAGS.data_dir)
  try:
    train_fn()
  except tf.train.NanLossDuringTrainingError:
    raise CommandError('Model diverged with loss = NaN')


def main(argv=None):  # pylint: disable=unused-argument
  train_main(train)


def run():
  entry.run(main, define_flags)


if __name__ == '__main__':
  run()
