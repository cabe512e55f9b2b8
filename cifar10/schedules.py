"""How the CIFAR-10 network is trained: the tutorial's schedule and faster ones.

A Schedule gives the learning rate at each step, the optimizer, the label
smoothing of the loss, the decay of the moving averages of the weights,
whether the training images get the tutorial's brightness and contrast
jitter, and how far from the centre their 24x24 crops may lie. The
documentation (docs/performance.md) compares the schedules.
"""
import math

import tensorflow.compat.v1 as tf

from cifar10 import cifar10_input

NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN = cifar10_input.NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN

# The tutorial's schedule (cifar10.py names these constants as the tutorial
# did).
MOVING_AVERAGE_DECAY = 0.9999     # The decay to use for the moving average.
NUM_EPOCHS_PER_DECAY = 350.0      # Epochs after which learning rate decays.
LEARNING_RATE_DECAY_FACTOR = 0.1  # Learning rate decay factor.
INITIAL_LEARNING_RATE = 0.1       # Initial learning rate.
TUTORIAL_BATCH_SIZE = 128         # The batch the tutorial's schedule is for.

# The faster schedule for the same network (--schedule=fast): Nesterov
# momentum with the learning rate warmed up linearly over the first
# FAST_WARMUP_FRACTION of the steps and then brought linearly to zero at the
# end of --fast_epochs, label smoothing, and a shorter moving average of the
# weights: the tutorial's 0.9999 averages over ~10K steps, a large part of a
# short run, and so lags behind it.
FAST_PEAK_LEARNING_RATE = 0.02
FAST_MOMENTUM = 0.9
FAST_WARMUP_FRACTION = 0.15
FAST_LABEL_SMOOTHING = 0.1
FAST_MOVING_AVERAGE_DECAY = 0.999
DEFAULT_FAST_EPOCHS = 100

# The fast schedule retuned for half its length (--schedule=fast50): twice
# the peak rate, a third of the warm-up, and no brightness/contrast jitter
# (per-image standardisation undoes the brightness and most of the
# contrast; on a short schedule the rest costs more than it teaches). The
# documentation (docs/performance.md) has the runs behind these.
FAST50_PEAK_LEARNING_RATE = 0.04
FAST50_WARMUP_FRACTION = 0.05
DEFAULT_FAST50_EPOCHS = 50

# fast50 squeezed into 25 epochs (--schedule=fast25), with the training
# crops drawn within FAST25_CROP_SHIFT pixels of the centre instead of
# anywhere in the 32x32 image: evaluation scores the central crop, and a
# short run learns that view sooner. The documentation (docs/performance.md)
# has the runs behind it and what each other change tried gave.
FAST25_CROP_SHIFT = 2
DEFAULT_FAST25_EPOCHS = 25
# The tutorial's crops: anywhere, up to 4 pixels from the centre.
TUTORIAL_CROP_SHIFT = cifar10_input.CROP_MARGIN
SCHEDULES = ('tutorial', 'fast', 'fast50', 'fast25')

# What sets the fast schedules apart: (peak learning rate, warm-up fraction,
# default length in epochs, brightness/contrast jitter, crop shift).
_FAST_SETTINGS = {
    'fast': (FAST_PEAK_LEARNING_RATE, FAST_WARMUP_FRACTION,
             DEFAULT_FAST_EPOCHS, True, TUTORIAL_CROP_SHIFT),
    'fast50': (FAST50_PEAK_LEARNING_RATE, FAST50_WARMUP_FRACTION,
               DEFAULT_FAST50_EPOCHS, False, TUTORIAL_CROP_SHIFT),
    'fast25': (FAST50_PEAK_LEARNING_RATE, FAST50_WARMUP_FRACTION,
               DEFAULT_FAST25_EPOCHS, False, FAST25_CROP_SHIFT),
}


def learning_rate(global_step, batch_size=TUTORIAL_BATCH_SIZE):
  """The tutorial's schedule: 0.1, divided by 10 every 350 epochs."""
  num_batches_per_epoch = NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN / batch_size
  decay_steps = int(num_batches_per_epoch * NUM_EPOCHS_PER_DECAY)
  return tf.train.exponential_decay(INITIAL_LEARNING_RATE,
                                    global_step,
                                    decay_steps,
                                    LEARNING_RATE_DECAY_FACTOR,
                                    staircase=True)


class Schedule(object):
  """How the network is trained: optimizer, learning rate, loss, averaging."""

  def __init__(self, name='tutorial', examples_per_step=TUTORIAL_BATCH_SIZE,
               fast_epochs=None):
    """fast_epochs: the length of the fast schedules (None: 100, 50, 25)."""
    if name not in SCHEDULES:
      raise ValueError('Unknown schedule %r: use one of %s.' %
                       (name, ', '.join(SCHEDULES)))
    self.name = name
    self.examples_per_step = examples_per_step
    fast = name in _FAST_SETTINGS
    (self.peak_learning_rate, self.warmup_fraction, default_epochs,
     # The tutorial's brightness and contrast jitter of the training images.
     self.color_jitter,
     # How many pixels from the centre a training crop may lie.
     self.crop_shift) = _FAST_SETTINGS.get(
         name, (None, None, None, True, TUTORIAL_CROP_SHIFT))
    if fast_epochs is None:
      fast_epochs = default_epochs
    # The step at which the schedule ends (None: it never does).
    self.last_step = (int(math.ceil(fast_epochs * NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN
                                    / examples_per_step)) if fast else None)
    self.label_smoothing = FAST_LABEL_SMOOTHING if fast else 0.0
    self.moving_average_decay = (FAST_MOVING_AVERAGE_DECAY if fast
                                 else MOVING_AVERAGE_DECAY)

  def learning_rate(self, global_step):
    if self.name == 'tutorial':
      return learning_rate(global_step, self.examples_per_step)
    step = tf.cast(global_step, tf.float32)
    warmup_steps = max(1.0, self.warmup_fraction * self.last_step)
    rising = step / warmup_steps
    falling = (self.last_step - step) / (self.last_step - warmup_steps)
    return tf.maximum(0.0, self.peak_learning_rate *
                      tf.minimum(rising, falling), name='learning_rate')

  def optimizer(self, lr):
    if self.name == 'tutorial':
      return tf.train.GradientDescentOptimizer(lr)
    return tf.train.MomentumOptimizer(lr, FAST_MOMENTUM, use_nesterov=True)

  def moving_averages(self, global_step):
    """The moving averages of the weights, which evaluation restores."""
    return tf.train.ExponentialMovingAverage(self.moving_average_decay,
                                             global_step)
