"""Trains the "Deep MNIST for experts" CNN, with checkpoints and TensorBoard summaries.

Run it (from this folder, from the repository root as mnist_cnn/mnist_deep.py,
or as the console script mnist_deep after `pip install -e .`):

  python mnist_deep.py --data_dir=/tmp/mnist_data --steps=20000

Every --eval_every steps it prints `Step: %d, Loss: %f, Accuracy: %f` over the
whole test set (evaluated in chunks, to bound the memory used). Started again with the
same --checkpoint_dir it resumes where it stopped; --steps counts in total.
Summaries go to --log_dir/<run name>/{train,test}: `tensorboard
--logdir=/tmp/mnist_logs` compares runs.

The documentation (docs/performance.md) has the accuracy the tutorial's
schedule reaches and the speed, each with the machine it was measured on.
"""
import os
import sys
import time
from datetime import datetime

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('mnist_cnn.mnist_deep'))

from absl import flags
import numpy as np
import tensorflow.compat.v1 as tf

from cli_support import entry
from mnist_cnn import input_data
from tutorials_common import checkpoints
from tutorials_common import interrupts
from mnist_cnn import model as mnist_model

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('data_dir', '/tmp/mnist_data',
                      'Folder with the four MNIST files (downloaded if absent).')
  flags.DEFINE_integer('steps', 10000,
                       'Training steps in total, across resumed runs (steps).',
                       lower_bound=0)
  flags.DEFINE_integer('batch_size', 50, 'Images per training step (images).',
                       lower_bound=1)
  flags.DEFINE_float('learning_rate', mnist_model.LEARNING_RATE,
                     'Adam learning rate (per step).')
  flags.register_validator('learning_rate', lambda rate: rate > 0,
                           message='--learning_rate must be more than 0.')
  flags.DEFINE_float('keep_prob', 0.5,
                     'Dropout keep probability while training (fraction).')
  flags.register_validator('keep_prob', lambda p: 0 < p <= 1,
                           message='--keep_prob must be more than 0 and at '
                           'most 1.')
  flags.DEFINE_integer('eval_every', 500,
                       'Steps between test-set evaluations and log lines '
                       '(steps).', lower_bound=1)
  flags.DEFINE_integer('checkpoint_every', 1000,
                       'Steps between checkpoints; one is also saved at the '
                       'end (steps).', lower_bound=1)
  # absl.logging defines --log_dir for log files it only writes on request;
  # the tutorial's --log_dir (TensorBoard) takes the name over.
  flags.DEFINE_string('log_dir', '/tmp/mnist_logs',
                      'TensorBoard folder; each run writes to a sub-folder.',
                      allow_override=True)
  flags.DEFINE_string('run_name', None,
                      'Sub-folder of --log_dir for this run (default: the '
                      'start time, YYYYmmdd-HHMMSS).')
  flags.DEFINE_string('checkpoint_dir', '/tmp/mnist_checkpoints',
                      'Where checkpoints are saved and resumed from.')
  entry.require_folder('checkpoint_dir')
  entry.require_folder('data_dir')
  entry.require_folder('log_dir')
  flags.DEFINE_integer('seed', 0, 'Random seed for weights and batches '
                       '(integer).')


def _scalars(writer, step, **values):
  summary = tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=value)
                              for tag, value in values.items()])
  writer.add_summary(summary, step)


def train(data, run_dir):
  """The training loop: returns (final test accuracy, examples/sec)."""
  tf.set_random_seed(FLAGS.seed)
  model = mnist_model.build(FLAGS.learning_rate)
  # Tagged with the variables' own names ('conv1/weights'); tf.summary.histogram
  # would make them unique against the variables' ops ('conv1/weights_1').
  histograms = tf.summary.merge([
      tf.raw_ops.HistogramSummary(tag=v.op.name, values=v)
      for v in tf.trainable_variables()])
  init_op = tf.global_variables_initializer()
  saver = tf.train.Saver(max_to_keep=3)
  checkpoint_path = os.path.join(FLAGS.checkpoint_dir, 'model.ckpt')
  tf.get_default_graph().finalize()  # No op may be added inside the loop.

  train_writer = tf.summary.FileWriter(os.path.join(run_dir, 'train'),
                                       tf.get_default_graph())
  test_writer = tf.summary.FileWriter(os.path.join(run_dir, 'test'))
  with tf.Session() as sess:
    latest = checkpoints.find_checkpoint(FLAGS.checkpoint_dir)
    if latest:
      saver.restore(sess, latest)
      print('Resuming from %s.' % latest)
    else:
      sess.run(init_op)
    step = sess.run(model.global_step)
    rng = np.random.RandomState(FLAGS.seed + step)
    num_train = len(data.train.images)
    order = rng.permutation(num_train)
    position = 0
    trained_examples = 0
    start = time.time()
    accuracy = None
    interrupted = None
    with interrupts.StopRequests() as stop:
      while step < FLAGS.steps and not stop.requested:
        if position + FLAGS.batch_size > num_train:
          order, position = rng.permutation(num_train), 0
        batch = order[position:position + FLAGS.batch_size]
        position += FLAGS.batch_size
        _, train_loss, train_correct = sess.run(
            [model.train_op, model.loss, model.correct],
            {model.x: data.train.images[batch],
             model.labels: data.train.labels[batch],
             model.keep_prob: FLAGS.keep_prob})
        step += 1  # train_op increments the global step once.
        trained_examples += len(batch)
        if step % 100 == 0 or step == FLAGS.steps:
          _scalars(train_writer, step, loss=train_loss,
                   accuracy=train_correct / len(batch))
        if step % FLAGS.eval_every == 0 or step == FLAGS.steps:
          test_loss, accuracy = mnist_model.evaluate(
              sess, model, data.test.images, data.test.labels)
          print('Step: %d, Loss: %f, Accuracy: %f' %
                (step, test_loss, accuracy))
          sys.stdout.flush()
          _scalars(test_writer, step, loss=test_loss, accuracy=accuracy)
          train_writer.add_summary(sess.run(histograms), step)
        if step % FLAGS.checkpoint_every == 0 or step == FLAGS.steps:
          saver.save(sess, checkpoint_path, global_step=step)
      if stop.requested:
        # Ctrl-C or SIGTERM between two steps: keep the steps since the last
        # checkpoint.
        interrupted = interrupts.stopped_and_saved(
            stop, lambda: (step, saver.save(sess, checkpoint_path,
                                            global_step=step)))
    elapsed = time.time() - start
  train_writer.close()
  test_writer.close()
  if interrupted:
    raise interrupted
  return accuracy, trained_examples / elapsed if elapsed else 0.0


def main(argv=None):  # pylint: disable=unused-argument
  run_name = FLAGS.run_name or datetime.now().strftime('%Y%m%d-%H%M%S')
  run_dir = os.path.join(FLAGS.log_dir, run_name)
  tf.gfile.MakeDirs(FLAGS.checkpoint_dir)
  data = input_data.read_data_sets(FLAGS.data_dir)
  with tf.Graph().as_default():
    try:
      accuracy, examples_per_sec = train(data, run_dir)
    except Exception as e:  # pylint: disable=broad-except
      # A full disk or a read-only folder: one line, and the checkpoint to
      # resume from.
      failure = checkpoints.save_failed(e, FLAGS.checkpoint_dir)
      if failure is None:
        raise
      raise failure from None
  if accuracy is None:
    print('Already at --steps=%d: nothing to train.' % FLAGS.steps)
  else:
    print('Test accuracy %.4f; %.1f examples/sec; checkpoints in %s; '
          'summaries in %s' % (accuracy, examples_per_sec,
                               FLAGS.checkpoint_dir, run_dir))


def run():
  entry.run(main, define_flags)

