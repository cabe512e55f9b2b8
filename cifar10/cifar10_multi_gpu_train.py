"""A binary to train CIFAR-10 using multiple GPUs with synchronous updates.

Run it (from this folder, from the repository root as
cifar10/cifar10_multi_gpu_train.py, or as the console script
cifar10_multi_gpu_train):

  python cifar10_multi_gpu_train.py --num_gpus=2 --data_dir=/tmp/cifar10_data

Each tower (one per GPU, named tower_0, tower_1, ...) computes the loss and
gradients of its own --batch_size images; the variables live on the CPU and
are shared; the gradients are averaged and applied once per step. One input
pipeline on the CPU feeds all towers. With fewer GPUs than --num_gpus the
towers share the GPUs there are; with none they run on as many CPU devices,
so the script works (and is tested) everywhere.

Checkpoints are those of cifar10_train.py: cifar10_eval.py reads them, and
either trainer resumes from the other's.

What to expect: accuracy as cifar10_train.py's per epoch. Towers pay off on
GPUs; on one CPU two towers only share the same cores (docs/performance.md,
Towers and workers). The log line reports examples/sec over all towers and sec/batch
per tower, as the original did.
"""
import os
import re
import sys

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('cifar10.cifar10_multi_gpu_train'))

from absl import flags
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import cifar10_flags
from cifar10 import precision as precision_lib
from cifar10 import schedules
from cifar10 import training
from cli_support import entry

FLAGS = flags.FLAGS


def define_flags():
  cifar10_flags.define_trainer_flags()
  flags.DEFINE_integer('num_gpus', 1, 'How many GPUs to use (towers).',
                       lower_bound=1)


def tower_devices(num_towers, num_gpus_available):
  """Device of each tower, and a note when there are fewer GPUs than towers."""
  if num_gpus_available >= num_towers:
    return ['/gpu:%d' % i for i in range(num_towers)], None
  if num_gpus_available:
    devices = ['/gpu:%d' % (i % num_gpus_available) for i in range(num_towers)]
    where = 'the %d GPU(s) there are' % num_gpus_available
  else:
    devices = ['/cpu:%d' % i for i in range(num_towers)]
    where = '%d CPU devices' % num_towers
  note = ('Asked for --num_gpus=%d but found %d GPU(s): running the %d towers '
          'on %s.' % (num_towers, num_gpus_available, num_towers, where))
  return devices, note


def tower_loss(scope, images, labels, label_smoothing=0.0,
               precision='float32'):
  """Calculate the total loss on a single tower running the CIFAR model.

  Args:
    scope: unique prefix string identifying the CIFAR tower, e.g. 'tower_0/'.
    images: Images. 4D tensor of shape [batch_size, height, width, 3].
    labels: Labels. 1D tensor of shape [batch_size].
    label_smoothing: the schedule's label smoothing.
    precision: one of precision.PRECISIONS.

  Returns:
     The tower's total loss and the terms it adds up.
  """
  logits = cifar10.logits(images, precision)
  # cifar10.loss() puts this tower's terms into the 'losses' collection; its
  # own sum covers every tower built so far, so add up this tower's alone.
  _ = cifar10.loss(logits, labels, label_smoothing)
  losses = tf.get_collection('losses', scope)
  total_loss = tf.add_n(losses, name='total_loss')
  return total_loss, losses


def average_gradients(tower_grads):
  """Calculate the average gradient for each shared variable across all towers.

  Args:
    tower_grads: one list of (gradient, variable) tuples per tower.

  Returns:
     List of (gradient, variable) pairs where the gradient has been averaged
     across all towers.
  """
  average_grads = []
  for grad_and_vars in zip(*tower_grads):
    # Note that each grad_and_vars looks like the following:
    #   ((grad0_gpu0, var0_gpu0), ... , (grad0_gpuN, var0_gpuN))
    grads = [tf.expand_dims(g, 0) for g, _ in grad_and_vars]
    grad = tf.reduce_mean(tf.concat(grads, 0), 0)
    # The variables are shared across towers: the first tower's pointer will do.
    average_grads.append((grad, grad_and_vars[0][1]))
  return average_grads


def _losses_across_towers(tower_terms):
  """Mean of each loss term over the towers, named as in cifar10_train.

  The moving averages of these terms are saved in checkpoints under the
  terms' names, so naming them as the single-tower graph does lets either
  trainer resume from the other's checkpoints.
  """
  by_name = {}
  for terms in tower_terms:
    for term in terms:
      name = re.sub('^%s_[0-9]*/' % cifar10.TOWER_NAME, '', term.op.name)
      by_name.setdefault(name, []).append(term)
  with tf.name_scope(None):
    means = [tf.reduce_mean(tf.stack(terms), name=name)
             for name, terms in by_name.items()]
    total = tf.add_n(means, name='total_loss')
  return total, means


def build_train_op(images, labels, devices, global_step, batch_size,
                   schedule=None, precision='float32'):
  """Splits one batch over the towers and trains on it synchronously.

  Args:
    images, labels: one batch of len(devices) * batch_size examples.
    devices: the device of each tower.
    global_step: the step counter.
    batch_size: examples per tower.
    schedule: a schedules.Schedule (default: the tutorial's).
    precision: one of precision.PRECISIONS.

  Returns:
    train_op, the loss averaged over towers, and the summary op (whose
    per-tower summaries come from the last tower alone).
  """
  num_towers = len(devices)
  if schedule is None:
    schedule = schedules.Schedule('tutorial', batch_size * num_towers)

  image_splits = tf.split(images, num_towers)
  label_splits = tf.split(labels, num_towers)
  tower_grads = []
  tower_terms = []
  with tf.variable_scope(tf.get_variable_scope()):
    for i, device in enumerate(devices):
      with tf.device(device):
        with tf.name_scope('%s_%d' % (cifar10.TOWER_NAME, i)) as scope:
          # Calculate the loss for one tower of the CIFAR model. This function
          # constructs the entire CIFAR model but shares the variables across
          # all towers.
          loss, terms = tower_loss(scope, image_splits[i], label_splits[i],
                                   schedule.label_smoothing, precision)
          tower_terms.append(terms)
          # Reuse variables for the next tower.
          tf.get_variable_scope().reuse_variables()
          tower_grads.append(precision_lib.gradients(loss, precision))
          last_scope = scope

  # Synchronisation point: the mean gradient over all towers.
  grads = average_gradients(tower_grads)
  total_loss, terms = _losses_across_towers(tower_terms)
  train_op = cifar10.train(total_loss, global_step, cifar10.TrainSettings(
      schedule=schedule, precision=precision, grads_and_vars=grads,
      loss_terms=terms))

  # Every tower made the same summaries: keep the last tower's and the rest.
  summaries = [s for s in tf.get_collection(tf.GraphKeys.SUMMARIES)
               if s.op.name.startswith(last_scope) or
               not re.match('%s_[0-9]*/' % cifar10.TOWER_NAME, s.op.name)]
  return train_op, total_loss, tf.summary.merge(summaries)


def train():
  """Train CIFAR-10 for a number of steps."""
  num_gpus_available = len(tf.config.list_physical_devices('GPU'))
  devices, note = tower_devices(FLAGS.num_gpus, num_gpus_available)
  if note:
    print(note)
  with tf.Graph().as_default(), tf.device('/cpu:0'):
    global_step = tf.train.get_or_create_global_step()
    schedule, last_step = cifar10_flags.schedule_from_flags(
        FLAGS.batch_size * FLAGS.num_gpus)
    # One input pipeline on the CPU feeds every tower.
    images, labels = cifar10.distorted_inputs(
        FLAGS.data_dir, FLAGS.batch_size * FLAGS.num_gpus, schedule)
    train_op, loss, summary_op = build_train_op(
        images, labels, devices, global_step, FLAGS.batch_size, schedule,
        cifar10_flags.precision_from_flags())
    config = tf.ConfigProto(
        # allow_soft_placement must be set to True to build towers on GPU, as
        # some of the ops do not have GPU implementations.
        allow_soft_placement=True,
        # Without GPUs, one CPU device per tower.
        device_count={'CPU': 1 if num_gpus_available else FLAGS.num_gpus})
    training.run_training(
        train_op, loss, FLAGS.batch_size * FLAGS.num_gpus,
        cifar10_flags.loop_settings(), num_towers=FLAGS.num_gpus,
        scaffold=tf.train.Scaffold(summary_op=summary_op), config=config,
        last_step=last_step)


def main(argv=None):  # pylint: disable=unused-argument
  training.train_main(train, FLAGS.train_dir, FLAGS.data_dir, FLAGS.fresh)


def run():
  entry.run(main, define_flags)

