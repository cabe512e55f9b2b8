"""Builds the CIFAR-10 network.

Summary of available functions:

 # Compute input images and labels for training. If you would like to run
 # evaluations, use inputs() instead.
 inputs, labels = distorted_inputs(data_dir, batch_size)

 # Compute inference on the model inputs to make a prediction.
 predictions = inference(inputs)

 # Compute the total loss of the prediction with respect to the labels.
 loss = loss(predictions, labels)

 # Create a graph to run one step of training with respect to the loss.
 train_op = train(loss, global_step)

The network: conv1 -> pool1 -> norm1 -> conv2 -> norm2 -> pool2 -> local3 ->
local4 -> softmax_linear, a small network of about a million parameters
(tests/test_cifar10_model.py counts them). The LRN is kernels.lrn (the fused
CPU kernel or TensorFlow's ops behind one function), the training schedules
are in schedules.py and the arithmetic of --precision in precision.py; the
commands' flags are in cifar10_flags.py and the trainers' loop in
training.py.
"""
import collections
import os
import re

if __name__ == 'cifar10':
  # Imported as `import cifar10` from inside this folder, as the tutorial's
  # users did: this module then stands where the package would, so it makes
  # the folder's other modules its submodules, and `from cifar10 import
  # cifar10_input` below finds them as it does through the package.
  __path__ = [os.path.dirname(os.path.abspath(__file__))]

import tensorflow.compat.v1 as tf  # noqa: E402

from cifar10 import cifar10_input  # noqa: E402
from cifar10 import kernels  # noqa: E402
from cifar10 import precision as precision_lib  # noqa: E402
from cifar10 import schedules  # noqa: E402

# Global constants describing the CIFAR-10 data set.
IMAGE_SIZE = cifar10_input.IMAGE_SIZE
NUM_CLASSES = cifar10_input.NUM_CLASSES
NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN = (
    cifar10_input.NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN)
NUM_EXAMPLES_PER_EPOCH_FOR_EVAL = cifar10_input.NUM_EXAMPLES_PER_EPOCH_FOR_EVAL

# Constants describing the training process: the tutorial's schedule
# (schedules.py builds it, and the faster ones beside it). The tutorial's
# readers and scripts find them here.
MOVING_AVERAGE_DECAY = schedules.MOVING_AVERAGE_DECAY
NUM_EPOCHS_PER_DECAY = schedules.NUM_EPOCHS_PER_DECAY
LEARNING_RATE_DECAY_FACTOR = schedules.LEARNING_RATE_DECAY_FACTOR
INITIAL_LEARNING_RATE = schedules.INITIAL_LEARNING_RATE

DEFAULT_BATCH_SIZE = schedules.TUTORIAL_BATCH_SIZE
DEFAULT_DATA_DIR = '/tmp/cifar10_data'

# If a model is trained with multiple GPUs, prefix all Op names with tower_name
# to differentiate the operations. Note that this prefix is removed from the
# names of the summaries when visualizing a model.
TOWER_NAME = 'tower'

# Images of a (shuffled) batch whose activations each layer's histogram
# summary bins: TensorFlow's histogram op bins one value at a time, and over
# a whole batch conv1's histogram alone took a large part of each summary
# step. A sample of sixteen images draws the same distribution.
ACTIVATION_HISTOGRAM_IMAGES = 16


def _scalar_summary(tag, value):
  """A scalar summary under exactly this tag.

  tf.summary.scalar derives the tag from the name scope and makes it unique
  ('conv1/conv1/conv1/sparsity', 'total_loss_1'); the tutorial's text and
  TensorBoard screenshots use the plain names.
  """
  summary = tf.raw_ops.ScalarSummary(tags=tag, values=value)
  tf.add_to_collection(tf.GraphKeys.SUMMARIES, summary)


def _histogram_summary(tag, values):
  """A histogram summary under exactly this tag (see _scalar_summary)."""
  summary = tf.raw_ops.HistogramSummary(tag=tag, values=values)
  tf.add_to_collection(tf.GraphKeys.SUMMARIES, summary)


def _activation_summary(x):
  """Helper to create summaries for activations.

  Creates a summary that provides a histogram of activations (of the first
  ACTIVATION_HISTOGRAM_IMAGES images).
  Creates a summary that measures the sparsity of activations.
  """
  # Remove 'tower_[0-9]/' from the name in case this is a multi-GPU training
  # session. This helps the clarity of presentation on tensorboard.
  tensor_name = re.sub('%s_[0-9]*/' % TOWER_NAME, '', x.op.name)
  x = tf.cast(x, tf.float32)  # Summaries of low-precision activations too.
  _histogram_summary(tensor_name + '/activations',
                     x[:ACTIVATION_HISTOGRAM_IMAGES])
  _scalar_summary(tensor_name + '/sparsity', tf.nn.zero_fraction(x))


def _variable_on_cpu(name, shape, initializer):
  """Helper to create a Variable stored on CPU memory.

  It is float32; precision.computing_in decides what the model reads.
  """
  with tf.device('/cpu:0'):
    var = tf.get_variable(name, shape, initializer=initializer,
                          dtype=tf.float32)
  return var


def _variable_with_weight_decay(name, shape, stddev, wd):
  """Helper to create an initialized Variable with weight decay.

  The Variable is initialized with a truncated normal distribution. A weight
  decay is added to the 'losses' collection only if wd is given.
  """
  var = _variable_on_cpu(
      name, shape,
      tf.truncated_normal_initializer(stddev=stddev))
  if wd is not None:
    # Of the weights as they are stored: float32 under a mixed precision.
    weight_decay = tf.multiply(
        tf.nn.l2_loss(precision_lib.stored_variable(var)), wd,
        name='weight_loss')
    tf.add_to_collection('losses', weight_decay)
  return var


def distorted_inputs(data_dir=DEFAULT_DATA_DIR, batch_size=DEFAULT_BATCH_SIZE,
                     schedule=None):
  """Construct distorted input for CIFAR training using the Reader ops.

  schedule: a schedules.Schedule, whose color_jitter and crop_shift say how
  the images are distorted (default: the tutorial's).
  """
  schedule = schedule or schedules.Schedule('tutorial')
  return cifar10_input.distorted_inputs(data_dir=data_dir,
                                        batch_size=batch_size,
                                        color_jitter=schedule.color_jitter,
                                        crop_shift=schedule.crop_shift)


def inputs(eval_data, data_dir=DEFAULT_DATA_DIR, batch_size=DEFAULT_BATCH_SIZE,
           num_examples=None, crops=1):
  """Construct input for CIFAR evaluation: every example exactly once (with
  crops=5, each as its five 24x24 crops)."""
  return cifar10_input.inputs(eval_data=eval_data, data_dir=data_dir,
                              batch_size=batch_size, num_examples=num_examples,
                              crops=crops)


def inference(images):
  """Build the CIFAR-10 model.

  Args:
    images: Images returned from distorted_inputs() or inputs():
      [batch, 24, 24, 3]. The network computes in their dtype (under
      precision.computing_in, which keeps its variables float32).

  Returns:
    Logits, [batch, NUM_CLASSES].
  """
  # We instantiate all variables using tf.get_variable() instead of
  # tf.Variable() in order to share variables across multiple GPU training runs.

  # conv1
  with tf.variable_scope('conv1') as scope:
    kernel = _variable_with_weight_decay('weights', shape=[5, 5, 3, 64],
                                         stddev=5e-2, wd=None)
    conv = tf.nn.conv2d(images, kernel, [1, 1, 1, 1], padding='SAME')
    biases = _variable_on_cpu('biases', [64], tf.constant_initializer(0.0))
    pre_activation = tf.nn.bias_add(conv, biases)
    conv1 = tf.nn.relu(pre_activation, name=scope.name)
    _activation_summary(conv1)

  # pool1
  pool1 = tf.nn.max_pool(conv1, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
                         padding='SAME', name='pool1')
  # norm1
  norm1 = kernels.lrn(pool1, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75,
                      name='norm1')

  # conv2
  with tf.variable_scope('conv2') as scope:
    kernel = _variable_with_weight_decay('weights', shape=[5, 5, 64, 64],
                                         stddev=5e-2, wd=None)
    conv = tf.nn.conv2d(norm1, kernel, [1, 1, 1, 1], padding='SAME')
    biases = _variable_on_cpu('biases', [64], tf.constant_initializer(0.1))
    pre_activation = tf.nn.bias_add(conv, biases)
    conv2 = tf.nn.relu(pre_activation, name=scope.name)
    _activation_summary(conv2)

  # norm2
  norm2 = kernels.lrn(conv2, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75,
                      name='norm2')
  # pool2
  pool2 = tf.nn.max_pool(norm2, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
                         padding='SAME', name='pool2')

  # local3
  with tf.variable_scope('local3') as scope:
    # Move everything into depth so we can perform a single matrix multiply.
    dim = pool2.shape[1:].num_elements()
    reshape = tf.reshape(pool2, [-1, dim])
    weights = _variable_with_weight_decay('weights', shape=[dim, 384],
                                          stddev=0.04, wd=0.004)
    biases = _variable_on_cpu('biases', [384], tf.constant_initializer(0.1))
    local3 = tf.nn.relu(tf.matmul(reshape, weights) + biases, name=scope.name)
    _activation_summary(local3)

  # local4
  with tf.variable_scope('local4') as scope:
    weights = _variable_with_weight_decay('weights', shape=[384, 192],
                                          stddev=0.04, wd=0.004)
    biases = _variable_on_cpu('biases', [192], tf.constant_initializer(0.1))
    local4 = tf.nn.relu(tf.matmul(local3, weights) + biases, name=scope.name)
    _activation_summary(local4)

  # linear layer(WX + b),
  # We don't apply softmax here because
  # tf.nn.sparse_softmax_cross_entropy_with_logits accepts the unscaled logits
  # and performs the softmax internally for efficiency.
  with tf.variable_scope('softmax_linear') as scope:
    weights = _variable_with_weight_decay('weights', [192, NUM_CLASSES],
                                          stddev=1 / 192.0, wd=None)
    biases = _variable_on_cpu('biases', [NUM_CLASSES],
                              tf.constant_initializer(0.0))
    softmax_linear = tf.add(tf.matmul(local4, weights), biases,
                            name=scope.name)
    _activation_summary(softmax_linear)

  return softmax_linear


def logits(images, precision='float32'):
  """inference() with --precision's arithmetic (precision.computing_in):
  images cast to the compute dtype, the variables float32."""
  with precision_lib.computing_in(precision) as dtype:
    return inference(tf.cast(images, dtype))


def loss(logits, labels, label_smoothing=0.0):
  """Add L2Loss to all the trainable variables.

  Add summary for "Loss" and "Loss/avg".

  Args:
    logits: Logits from inference().
    labels: Labels from distorted_inputs or inputs(). 1-D tensor of shape
      [batch_size].

  Returns:
    Loss tensor of type float32: mean cross entropy plus all weight decay.
  """
  # Calculate the average cross entropy loss across the batch. It is computed
  # in float32 even with --use_fp16, where the logits are float16.
  labels = tf.cast(labels, tf.int64)
  logits = tf.cast(logits, tf.float32)
  cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits, name='cross_entropy_per_example')
  if label_smoothing:
    # The cross entropy against (1 - e) * one_hot + e / NUM_CLASSES.
    uniform_cross_entropy = -tf.reduce_mean(tf.nn.log_softmax(logits), axis=1)
    cross_entropy = ((1.0 - label_smoothing) * cross_entropy +
                     label_smoothing * uniform_cross_entropy)
  cross_entropy_mean = tf.reduce_mean(cross_entropy, name='cross_entropy')
  tf.add_to_collection('losses', cross_entropy_mean)

  # The total loss is defined as the cross entropy loss plus all of the weight
  # decay terms (L2 loss).
  losses = [tf.cast(l, tf.float32) for l in tf.get_collection('losses')]
  return tf.add_n(losses, name='total_loss')


def add_loss_summaries(total_loss, losses=None):
  """Add summaries for losses in CIFAR-10 model.

  Generates moving average for all losses and associated summaries for
  visualizing the performance of the network.

  Args:
    total_loss: Total loss from loss().
    losses: the terms of total_loss (default: the 'losses' collection).

  Returns:
    loss_averages_op: op for generating moving averages of losses.
  """
  # Compute the moving average of all individual losses and the total loss.
  loss_averages = tf.train.ExponentialMovingAverage(0.9, name='avg')
  if losses is None:
    losses = tf.get_collection('losses')
  loss_averages_op = loss_averages.apply(losses + [total_loss])

  # Attach a scalar summary to all individual losses and the total loss; do the
  # same for the averaged version of the losses.
  for l in losses + [total_loss]:
    # Name each loss as '(raw)' and name the moving average version of the loss
    # as the original loss name.
    _scalar_summary(l.op.name + ' (raw)', l)
    _scalar_summary(l.op.name, loss_averages.average(l))

  return loss_averages_op


def add_gradient_summaries(grads_and_vars, finite_only=False):
  """Histograms of the trainable variables and of their gradients.

  With finite_only, a gradient's histogram leaves out its inf and NaN
  values: under mixed_float16 a step whose scaled gradients overflow is
  skipped by design, and a histogram of an inf stops the run.
  """
  for var in tf.trainable_variables():
    _histogram_summary(var.op.name, var)
  for grad, var in grads_and_vars:
    if grad is not None:
      if finite_only:
        grad = tf.boolean_mask(grad, tf.math.is_finite(grad))
      _histogram_summary(var.op.name + '/gradients', grad)


# How train() trains, beside the tutorial's loss and step: the defaults are
# the tutorial's own (its schedule for a batch of 128, float32).
TrainSettings = collections.namedtuple('TrainSettings', [
    'schedule',        # A schedules.Schedule: optimizer, rate, averages.
    'precision',       # One of precision.PRECISIONS.
    'grads_and_vars',  # The towers' averaged gradients (None: computed here).
    'loss_terms',      # total_loss's terms (None: the 'losses' collection).
    'sync_replicas',   # Synchronous cluster training (None: one trainer).
])
TrainSettings.__new__.__defaults__ = (None, 'float32', None, None, None)


def train(total_loss, global_step, settings=None):
  """Train CIFAR-10 model: every trainer's one train-op builder.

  Create an optimizer and apply to all trainable variables. Add moving
  average for all trainable variables.

  Args:
    total_loss: Total loss from loss(); for towers, the mean over towers.
    global_step: Integer Variable counting the number of training steps
      processed.
    settings: a TrainSettings (default: the tutorial's schedule, float32).
      With mixed_float16 (loss scaling) a step whose gradients are not finite
      leaves the variables as they are and halves the loss scale. With
      sync_replicas (an object of cifar10_distributed_train.py), its
      wrap(optimizer, moving_averages) makes the optimizer that aggregates
      every worker's gradients and then moves the moving averages itself.

  Returns:
    train_op: op for training.
  """
  settings = settings or TrainSettings()
  schedule = settings.schedule or schedules.Schedule('tutorial')
  lr = schedule.learning_rate(global_step)
  _scalar_summary('learning_rate', lr)
  optimizer = schedule.optimizer(lr)
  variable_averages = schedule.moving_averages(global_step)
  if settings.sync_replicas is not None:
    optimizer = settings.sync_replicas.wrap(optimizer, variable_averages)

  # Generate moving averages of all losses and associated summaries.
  loss_averages_op = add_loss_summaries(total_loss, settings.loss_terms)

  # Compute gradients.
  grads_and_vars = settings.grads_and_vars
  if grads_and_vars is None:
    with tf.control_dependencies([loss_averages_op]):
      grads_and_vars = precision_lib.gradients(total_loss, settings.precision)

  # Apply gradients.
  apply_gradient_op, grads_and_vars = precision_lib.apply_gradients(
      optimizer, grads_and_vars, global_step, settings.precision,
      synchronous=settings.sync_replicas is not None)
  add_gradient_summaries(grads_and_vars,
                         finite_only=settings.precision == 'mixed_float16')

  if settings.sync_replicas is None:
    # Track the moving averages of all trainable variables.
    with tf.control_dependencies([apply_gradient_op]):
      apply_gradient_op = variable_averages.apply(tf.trainable_variables())
  return tf.group(apply_gradient_op, loss_averages_op, name='train')


def variables_to_restore(checkpoint_path=None):
  """Maps checkpoint names to variables so that eval loads the shadow values.

  Given checkpoint_path, checks that the checkpoint has the moving averages;
  if it has none (a checkpoint written by other code), maps the variables to
  their raw values instead. Returns (mapping, True if it uses the averages)
  then; without checkpoint_path, the mapping alone.
  """
  variable_averages = tf.train.ExponentialMovingAverage(MOVING_AVERAGE_DECAY)
  averaged = variable_averages.variables_to_restore()
  if checkpoint_path is None:
    return averaged
  saved = set(name for name, _ in tf.train.list_variables(checkpoint_path))
  if all(name in saved for name in averaged):
    return averaged, True
  return {v.op.name: v for v in tf.global_variables()}, False


def view_probabilities(images, flip=False, precision='float32'):
  """Softmax over the classes of each view of each image, for evaluation:
  float32 [views, batch, NUM_CLASSES].

  images: [batch, 24, 24, 3] (one view), or [batch, crops, 24, 24, 3]
    (cifar10_input.eval_images with crops). With flip, each view's mirror
    image too, after them. All views go through the network in one pass,
    view by view, so that its first batch rows are the images themselves.
  precision: logits()'.
  """
  if images.shape.ndims == 4:
    images = images[:, None]
  views = tf.transpose(images, [1, 0, 2, 3, 4])
  if flip:
    views = tf.concat([views, tf.reverse(views, [3])], axis=0)
  count = tf.shape(views)[0]
  flat = tf.reshape(views, [-1, IMAGE_SIZE, IMAGE_SIZE, 3])
  probabilities = tf.nn.softmax(tf.cast(logits(flat, precision), tf.float32))
  return tf.reshape(probabilities, [count, -1, NUM_CLASSES])


def class_probabilities(images, flip=False, precision='float32'):
  """Softmax over the classes, float32 [batch, NUM_CLASSES], for evaluation:
  the average of view_probabilities' views (test-time augmentation where
  there are several: each image's mirror image with flip, its corner crops
  with crops)."""
  return tf.reduce_mean(view_probabilities(images, flip, precision), axis=0)
