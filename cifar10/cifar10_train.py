"""A binary to train CIFAR-10 using a single GPU or the CPU.

Run it (from this folder, from the repository root as cifar10/cifar10_train.py,
or as the console script cifar10_train after `pip install -e .`):

  python cifar10_train.py --data_dir=/tmp/cifar10_data --train_dir=/tmp/cifar10_train

and, beside it, `python cifar10_eval.py` and
`tensorboard --logdir=/tmp/cifar10_train`.

What to expect: a log line every --log_frequency steps reports the loss and
the speed. The loss starts well above ln(10), the cross entropy of a uniform
guess, because it includes the weight decay of local3 and local4, and falls
from there. With the tutorial's schedule (the default) the model reaches the
tutorial's accuracy only after a long run; the fast schedules get there in
far fewer epochs. --precision=mixed_bfloat16 computes in bfloat16 on CPUs
with bfloat16 units. docs/performance.md has the measured curves and speeds,
each with the machine it came from.

Unlike the tutorial, this does not delete --train_dir: it resumes from the
latest checkpoint there (the global step continues). Use --fresh to start over.
Checkpoints are written atomically, so killing the trainer at any moment leaves
the previous checkpoint readable by cifar10_eval.py.
"""
import os
import sys

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('cifar10.cifar10_train'))

from absl import flags
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import cifar10_flags
from cifar10 import training
from cli_support import entry

FLAGS = flags.FLAGS


def define_flags():
  cifar10_flags.define_trainer_flags()


def train(extra_hooks=()):
  """Train CIFAR-10 for a number of steps (extra_hooks watch the loop)."""
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    schedule, last_step = cifar10_flags.schedule_from_flags(FLAGS.batch_size)

    # Get images and labels for CIFAR-10.
    # Force input pipeline to CPU:0 to avoid operations sometimes ending up on
    # GPU and resulting in a slow down.
    with tf.device('/cpu:0'):
      images, labels = cifar10.distorted_inputs(FLAGS.data_dir,
                                                FLAGS.batch_size, schedule)

    # Build a Graph that computes the logits predictions from the
    # inference model, in the arithmetic of --precision.
    precision = cifar10_flags.precision_from_flags()
    logits = cifar10.logits(images, precision)

    # Calculate loss.
    loss = cifar10.loss(logits, labels, schedule.label_smoothing)

    # Build a Graph that trains the model with one batch of examples and
    # updates the model parameters.
    train_op = cifar10.train(loss, global_step, cifar10.TrainSettings(
        schedule=schedule, precision=precision))

    training.run_training(train_op, loss, FLAGS.batch_size,
                          cifar10_flags.loop_settings(), last_step=last_step,
                          extra_hooks=extra_hooks)


def main(argv=None):  # pylint: disable=unused-argument
  training.train_main(train, FLAGS.train_dir, FLAGS.data_dir, FLAGS.fresh)


def run():
  entry.run(main, define_flags)

