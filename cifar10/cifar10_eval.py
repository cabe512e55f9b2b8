"""Evaluation for CIFAR-10.

Run it beside cifar10_train.py (from this folder, from the repository root as
cifar10/cifar10_eval.py, or as the console script cifar10_eval):

  python cifar10_eval.py --data_dir=/tmp/cifar10_data \
      --checkpoint_dir=/tmp/cifar10_train --eval_dir=/tmp/cifar10_eval

It waits for the trainer's first checkpoint, then evaluates each new
checkpoint once (at most one every --eval_interval_secs), restoring the moving
averages of the weights, and prints `precision @ 1` over exactly
--num_examples test images. --run_once evaluates the latest checkpoint and
exits.

What to expect: the precision rises with the trainer's steps towards the
tutorial's accuracy; --eval_flip, which also scores each mirror image, costs
twice the compute and gains a little. Evaluating the test images is quick
next to training. The documentation (docs/performance.md) has the measured
figures.
"""
import math
import os
import sys
import time
from datetime import datetime

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('cifar10.cifar10_eval'))

from absl import flags
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import cifar10_flags
from cifar10 import cifar10_input
from cli_support import entry
from tutorials_common import checkpoints
from tutorials_common.errors import UsageError

FLAGS = flags.FLAGS

# How often to look for a new checkpoint while waiting (seconds).
POLL_SECS = 2


def define_flags():
  cifar10_flags.define_flags(use_fp16_help='eval')
  cifar10_flags.define_precision_flag()
  flags.DEFINE_string('eval_dir', '/tmp/cifar10_eval',
                      'Directory where to write event logs.')
  entry.require_folder('eval_dir')
  flags.DEFINE_string('eval_data', 'test',
                      "Either 'test' (the 10,000 test images) or 'train_eval' "
                      '(the training images).')
  flags.DEFINE_string('checkpoint_dir', '/tmp/cifar10_train',
                      'Directory where to read model checkpoints.')
  entry.require_folder('checkpoint_dir')
  flags.DEFINE_integer('eval_interval_secs', 60 * 5,
                       'How often to run the eval (seconds).', lower_bound=0)
  flags.DEFINE_integer('num_examples', 10000,
                       'Number of examples to run (examples, each counted '
                       'once).', lower_bound=1)
  flags.DEFINE_boolean('run_once', False,
                       'Whether to run eval only once (true/false).')
  flags.DEFINE_boolean('eval_flip', False,
                       'Also score the mirror image of each test image and '
                       'average the two softmax outputs (true/false): twice '
                       'the compute, for a little more precision.')
  flags.DEFINE_enum('eval_crops', '1', ['1', '5'],
                    'Crops of each 32x32 test image scored (crops): 1, the '
                    'central 24x24 crop (the tutorial\'s); 5, also the four '
                    'corner crops, their softmax outputs averaged (with '
                    '--eval_flip, each with its mirror image: ten views), '
                    'printed and summarised beside the central crop\'s '
                    'precision, not in place of it; five times the '
                    'compute.')
  flags.register_validator('eval_data', lambda v: v in ('test', 'train_eval'),
                           message="--eval_data must be 'test' or 'train_eval'")


class Evaluator(object):
  """The evaluation graph, built once and run on each checkpoint.

  With crops=5 it scores the central crop (the tutorial's precision @ 1, and
  its mirror with flip) and, from the same pass, all five crops averaged:
  crops_precision after evaluate().
  """

  def __init__(self, eval_data, data_dir, batch_size, num_examples,
               flip=False, precision='float32', crops=1):
    self.num_examples = num_examples
    self.crops = crops
    self.crops_precision = None
    self.graph = tf.Graph()
    with self.graph.as_default():
      images, labels = cifar10.inputs(eval_data=eval_data == 'test',
                                      data_dir=data_dir,
                                      batch_size=batch_size,
                                      num_examples=num_examples, crops=crops)
      views = cifar10.view_probabilities(images, flip, precision)
      # The central crop is the first view, and with flip its mirror the
      # first after the crops.
      central = tf.gather(views, [0, crops] if flip else [0])
      self._num_correct = [
          tf.reduce_sum(tf.cast(tf.nn.in_top_k(tf.reduce_mean(p, axis=0),
                                               labels, 1), tf.int64))
          for p in ([central, views] if crops > 1 else [central])]
      self._batch_count = tf.size(labels)
      self._saver = tf.train.Saver(cifar10.variables_to_restore())
      self.graph.finalize()

  def evaluate(self, checkpoint_path):
    """Returns (precision @ 1, global step) of one checkpoint."""
    started = time.time()
    with tf.Session(graph=self.graph) as sess:
      self._saver.restore(sess, checkpoint_path)
      global_step = int(checkpoint_path.split('/')[-1].split('-')[-1])
      true_counts = [0] * len(self._num_correct)
      total = 0
      try:
        while True:
          correct, count = sess.run([self._num_correct, self._batch_count])
          true_counts = [a + b for a, b in zip(true_counts, correct)]
          total += count
      except tf.errors.OutOfRangeError:
        pass
    if total != self.num_examples:
      raise RuntimeError('Evaluated %d examples, expected %d.' %
                         (total, self.num_examples))
    self.seconds = time.time() - started
    if self.crops > 1:
      self.crops_precision = true_counts[1] / float(total)
    return true_counts[0] / float(total), global_step


# The summary tag of the multi-crop figure, beside the tutorial's.
CROPS_TAG = 'Precision @ 1 (5 crops)'


def _write_precision(summary_writer, precision, global_step,
                     crops_precision=None):
  summary = tf.Summary()
  summary.value.add(tag='Precision @ 1', simple_value=precision)
  if crops_precision is not None:
    summary.value.add(tag=CROPS_TAG, simple_value=crops_precision)
  summary_writer.add_summary(summary, global_step)
  summary_writer.flush()


def eval_once(evaluator, summary_writer, checkpoint_path):
  """Evaluates one checkpoint, prints and records its precision @ 1.

  Returns False when the checkpoint vanished before it could be read (the
  trainer keeps only its latest five and deletes older ones); raises a
  CheckpointError for one whose weights are not finite.
  """
  checkpoints.require_finite(checkpoint_path, what='evaluate it')
  try:
    precision, global_step = evaluator.evaluate(checkpoint_path)
  except (tf.errors.NotFoundError, tf.errors.DataLossError,
          ValueError) as e:
    if tf.train.checkpoint_exists(checkpoint_path):
      raise
    print('%s: checkpoint %s was removed before it could be read (%s); '
          'waiting for the next one.' %
          (datetime.now(), checkpoint_path, type(e).__name__))
    return False
  print('%s: precision @ 1 = %.3f' % (datetime.now(), precision))
  if evaluator.crops_precision is not None:
    print('%s: precision @ 1 = %.3f over %d crops' % (
        datetime.now(), evaluator.crops_precision, evaluator.crops))
  print('%s: evaluated %d examples in %.2f s (%.0f examples/sec) of %s, '
        'step %d' % (datetime.now(), evaluator.num_examples, evaluator.seconds,
                     evaluator.num_examples / evaluator.seconds,
                     os.path.basename(checkpoint_path), global_step))
  sys.stdout.flush()
  _write_precision(summary_writer, precision, global_step,
                   evaluator.crops_precision)
  return True


def watch(evaluator, summary_writer, checkpoint_dir, eval_interval_secs,
          poll_secs=POLL_SECS, keep_polling=lambda: True):
  """Evaluates each new checkpoint in checkpoint_dir once, as it appears.

  Looks every poll_secs, evaluates at most one checkpoint every
  eval_interval_secs, and goes on while keep_polling() (called once a look)
  is true: for ever, beside a trainer.
  """
  last_evaluated = None
  last_eval_time = -math.inf
  waiting_said = False
  while keep_polling():
    latest = checkpoints.find_checkpoint(checkpoint_dir)
    if latest is None and not waiting_said:
      print('No checkpoint file found in %s yet; waiting for the trainer to '
            'write one.' % checkpoint_dir)
      sys.stdout.flush()
      waiting_said = True
    due = time.time() - last_eval_time >= eval_interval_secs
    if latest and latest != last_evaluated and due:
      last_eval_time = time.time()
      try:
        if eval_once(evaluator, summary_writer, latest):
          last_evaluated = latest
      except checkpoints.CheckpointError as e:
        # A diverged run's checkpoint: said once; the next one may be good.
        print('%s: %s' % (datetime.now(), e))
        sys.stdout.flush()
        last_evaluated = latest
    time.sleep(poll_secs)


def no_checkpoint(checkpoint_dir):
  """The UsageError of --run_once where checkpoint_dir has no checkpoint."""
  if not os.path.isdir(checkpoint_dir):
    where = '--checkpoint_dir=%s does not exist' % checkpoint_dir
  else:
    where = 'no checkpoint in %s' % checkpoint_dir
  return UsageError(
      'No checkpoint file found: %s. Pass the --train_dir of a training run '
      '(python cifar10_train.py --train_dir=%s writes one there).'
      % (where, checkpoint_dir))


def evaluate(checkpoint=None):
  """Eval CIFAR-10: checkpoint (--run_once), else each new one as it comes."""
  evaluator = Evaluator(FLAGS.eval_data, FLAGS.data_dir, FLAGS.batch_size,
                        FLAGS.num_examples, FLAGS.eval_flip,
                        cifar10_flags.precision_from_flags(),
                        int(FLAGS.eval_crops))
  summary_writer = tf.summary.FileWriter(FLAGS.eval_dir, evaluator.graph)
  if checkpoint:
    return 0 if eval_once(evaluator, summary_writer, checkpoint) else 1
  watch(evaluator, summary_writer, FLAGS.checkpoint_dir,
        FLAGS.eval_interval_secs)


def main(argv=None):  # pylint: disable=unused-argument
  checkpoint = None
  if FLAGS.run_once:
    # Before anything is downloaded or created: a mistaken folder is one line.
    checkpoint = checkpoints.find_checkpoint(FLAGS.checkpoint_dir)
    if not checkpoint:
      raise no_checkpoint(FLAGS.checkpoint_dir)
    checkpoints.require_finite(checkpoint, what='evaluate it')
  # The data first: a failed download leaves no empty --eval_dir.
  cifar10_input.maybe_download_and_extract(FLAGS.data_dir)
  tf.gfile.MakeDirs(FLAGS.eval_dir)
  print('Precision @ 1 summaries go to %s; to watch them, run '
        '`tensorboard --logdir=%s`.' % (FLAGS.eval_dir, FLAGS.eval_dir))
  return evaluate(checkpoint)


def run():
  entry.run(main, define_flags)

