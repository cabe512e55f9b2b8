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
 train_op = train(loss, global_step, batch_size)

The network: conv1 -> pool1 -> norm1 -> conv2 -> norm2 -> pool2 -> local3 ->
local4 -> softmax_linear, a small network of about a million parameters
(tests/test_cifar10_model.py counts them; the README, Speed, has its cost).
The LRN lives in lrn.py, the training schedules in schedules.py and the
arithmetic of --precision in precision.py; the commands' flags in
cifar10_flags.py and the trainers' loop in training.py.
"""
import re

import tensorflow.compat.v1 as tf

from cifar10 import cifar10_input
from cifar10 import lrn as lrn_lib
from cifar10 import precision as precision_lib
from cifar10 import schedules

# Global constants describing the CIFAR-10 data set.
IMAGE_SIZE = cifar10_input.IMAGE_SIZE
NUM_CLASSES = cifar10_input.NUM_CLASSES
NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN = cifar10_input.NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN
NUM_EXAMPLES_PER_EPOCH_FOR_EVAL = cifar10_input.NUM_EXAMPLES_PER_EPOCH_FOR_EVAL

# Constants describing the training process: the tutorial's schedule, which
# schedules.py builds beside the faster one.
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
# summary bins. TensorFlow's histogram op bins one value at a time: over all
# 128 images, conv1's 4.7 million activations took ~190 ms of every summary
# step, about 7% of a bfloat16 run's time at the default of one summary per
# 100 steps (README, Speed). A sixteen-image sample draws the same distribution.
ACTIVATION_HISTOGRAM_IMAGES = 16

_as = precision_lib.cast


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
  x = _as(x, tf.float32)  # Summaries of low-precision activations too.
  _histogram_summary(tensor_name + '/activations',
                     x[:ACTIVATION_HISTOGRAM_IMAGES])
  _scalar_summary(tensor_name + '/sparsity', tf.nn.zero_fraction(x))


def _variable_on_cpu(name, shape, initializer, dtype):
  """Helper to create a Variable stored on CPU memory."""
  with tf.device('/cpu:0'):
    var = tf.get_variable(name, shape, initializer=initializer, dtype=dtype)
  return var


def _variable_with_weight_decay(name, shape, stddev, wd, dtype):
  """Helper to create an initialized Variable with weight decay.

  The Variable is initialized with a truncated normal distribution. A weight
  decay is added to the 'losses' collection only if wd is given.
  """
  var = _variable_on_cpu(
      name, shape,
      tf.truncated_normal_initializer(stddev=stddev), dtype)
  if wd is not None:
    weight_decay = tf.multiply(tf.nn.l2_loss(var), wd, name='weight_loss')
    tf.add_to_collection('losses', weight_decay)
  return var


def distorted_inputs(data_dir=DEFAULT_DATA_DIR, batch_size=DEFAULT_BATCH_SIZE,
                     use_fp16=False, color_jitter=True):
  """Construct distorted input for CIFAR training using the Reader ops.

  color_jitter: the tutorial's brightness and contrast changes (the
  schedule's color_jitter).
  """
  images, labels = cifar10_input.distorted_inputs(data_dir=data_dir,
                                                  batch_size=batch_size,
                                                  color_jitter=color_jitter)
  if use_fp16:
    images = tf.cast(images, tf.float16)
  return images, labels


def inputs(eval_data, data_dir=DEFAULT_DATA_DIR, batch_size=DEFAULT_BATCH_SIZE,
           num_examples=None, use_fp16=False):
  """Construct input for CIFAR evaluation: every example exactly once."""
  images, labels = cifar10_input.inputs(eval_data=eval_data, data_dir=data_dir,
                                        batch_size=batch_size,
                                        num_examples=num_examples)
  if use_fp16:
    images = tf.cast(images, tf.float16)
  return images, labels


def inference(images, lrn=lrn_lib.local_response_normalization, precision='float32',
              lrn_dtype=None):
  """Build the CIFAR-10 model.

  Args:
    images: [batch, 24, 24, 3] float tensor from distorted_inputs() or inputs().
      With precision float32 the variables take the images' dtype (float16
      with --use_fp16).
    lrn: the local response normalization, called as tf.nn.lrn is (the
      speed benchmark passes tf.nn.lrn itself to compare).
    precision: one of precision.PRECISIONS. The mixed ones keep float32
      variables and compute in precision.compute_dtype(precision).
    lrn_dtype: the dtype of the LRN's input and output; default: the
      activations' dtype in float32 and where the fused kernel takes
      bfloat16 (lrn.fused_kernel_for, which computes in float32 inside),
      else float32 (the benchmark measures the other choices).

  Returns:
    Logits, [batch, NUM_CLASSES], in the dtype of the computation.
  """
  # We instantiate all variables using tf.get_variable() instead of
  # tf.Variable() in order to share variables across multiple GPU training runs.
  if precision == 'float32':
    dtype = compute = images.dtype.base_dtype
  else:
    dtype, compute = tf.float32, precision_lib.compute_dtype(precision)
    images = _as(images, compute)

  def normalize(x, name):
    dtype = lrn_dtype
    if dtype is None:
      # The fused kernel computes a bfloat16 LRN in float32 itself.
      fused = (lrn is lrn_lib.local_response_normalization and
               lrn_lib.fused_kernel_for(x) is not None)
      dtype = compute if precision == 'float32' or fused else tf.float32
    return _as(lrn(_as(x, dtype), 4, bias=1.0, alpha=0.001 / 9.0,
                   beta=0.75, name=name), compute)

  # conv1
  with tf.variable_scope('conv1') as scope:
    kernel = _variable_with_weight_decay('weights', shape=[5, 5, 3, 64],
                                         stddev=5e-2, wd=None, dtype=dtype)
    conv = tf.nn.conv2d(images, _as(kernel, compute), [1, 1, 1, 1],
                        padding='SAME')
    biases = _variable_on_cpu('biases', [64], tf.constant_initializer(0.0),
                              dtype)
    pre_activation = tf.nn.bias_add(conv, _as(biases, compute))
    conv1 = tf.nn.relu(pre_activation, name=scope.name)
    _activation_summary(conv1)

  # pool1
  pool1 = tf.nn.max_pool(conv1, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
                         padding='SAME', name='pool1')
  # norm1
  norm1 = normalize(pool1, name='norm1')

  # conv2
  with tf.variable_scope('conv2') as scope:
    kernel = _variable_with_weight_decay('weights', shape=[5, 5, 64, 64],
                                         stddev=5e-2, wd=None, dtype=dtype)
    conv = tf.nn.conv2d(norm1, _as(kernel, compute), [1, 1, 1, 1],
                        padding='SAME')
    biases = _variable_on_cpu('biases', [64], tf.constant_initializer(0.1),
                              dtype)
    pre_activation = tf.nn.bias_add(conv, _as(biases, compute))
    conv2 = tf.nn.relu(pre_activation, name=scope.name)
    _activation_summary(conv2)

  # norm2
  norm2 = normalize(conv2, name='norm2')
  # pool2
  pool2 = tf.nn.max_pool(norm2, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
                         padding='SAME', name='pool2')

  # local3
  with tf.variable_scope('local3') as scope:
    # Move everything into depth so we can perform a single matrix multiply.
    dim = pool2.shape[1:].num_elements()
    reshape = tf.reshape(pool2, [-1, dim])
    weights = _variable_with_weight_decay('weights', shape=[dim, 384],
                                          stddev=0.04, wd=0.004, dtype=dtype)
    biases = _variable_on_cpu('biases', [384], tf.constant_initializer(0.1),
                              dtype)
    local3 = tf.nn.relu(tf.matmul(reshape, _as(weights, compute)) +
                        _as(biases, compute), name=scope.name)
    _activation_summary(local3)

  # local4
  with tf.variable_scope('local4') as scope:
    weights = _variable_with_weight_decay('weights', shape=[384, 192],
                                          stddev=0.04, wd=0.004, dtype=dtype)
    biases = _variable_on_cpu('biases', [192], tf.constant_initializer(0.1),
                              dtype)
    local4 = tf.nn.relu(tf.matmul(local3, _as(weights, compute)) +
                        _as(biases, compute), name=scope.name)
    _activation_summary(local4)

  # linear layer(WX + b),
  # We don't apply softmax here because
  # tf.nn.sparse_softmax_cross_entropy_with_logits accepts the unscaled logits
  # and performs the softmax internally for efficiency.
  with tf.variable_scope('softmax_linear') as scope:
    weights = _variable_with_weight_decay('weights', [192, NUM_CLASSES],
                                          stddev=1 / 192.0, wd=None,
                                          dtype=dtype)
    biases = _variable_on_cpu('biases', [NUM_CLASSES],
                              tf.constant_initializer(0.0), dtype)
    softmax_linear = tf.add(tf.matmul(local4, _as(weights, compute)),
                            _as(biases, compute),
                            name=scope.name)
    _activation_summary(softmax_linear)

  return softmax_linear


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


def train(total_loss, global_step, batch_size=DEFAULT_BATCH_SIZE,
          schedule=None, grads_and_vars=None, loss_terms=None,
          precision='float32', sync_optimizer=None, learning_rate=None):
  """Builds the op that trains the CIFAR-10 model one step: every trainer's.

  Creates the schedule's learning rate and optimizer and the moving averages
  of the losses (with their summaries), applies the gradients, then moves the
  moving averages of the trainable variables, which evaluation restores.

  Args:
    total_loss: Total loss from loss(); for towers, the mean over towers.
    global_step: Integer Variable counting the number of training steps
      processed.
    batch_size: images per step, which sets how many steps an epoch is.
    schedule: a schedules.Schedule (default: the tutorial's, for batch_size).
    grads_and_vars: (gradient, variable) pairs computed by the caller, such
      as the towers' averaged gradients; default: the gradients of
      total_loss, computed here.
    loss_terms: the terms of total_loss to average and summarise (default:
      the 'losses' collection).
    precision: one of precision.PRECISIONS. With mixed_float16 (loss scaling)
      a step whose gradients are not finite leaves the variables as they are
      (with sync_optimizer, applies zero gradients: no worker can skip a step
      alone) and halves the loss scale.
    sync_optimizer: a tf.train.SyncReplicasOptimizer the caller built around
      schedule.optimizer(learning_rate), with variable_averages=
      schedule.moving_averages(global_step) and the trainable variables to
      average: it applies the gradients and then the moving averages itself,
      so none are created here. Default: the schedule's optimizer, and the
      moving averages applied here.
    learning_rate: the learning rate sync_optimizer was built with, for its
      summary; required with sync_optimizer, else ignored.

  Returns:
    train_op: op for training.
  """
  if schedule is None:
    schedule = schedules.Schedule('tutorial', batch_size)
  if sync_optimizer is None:
    learning_rate = schedule.learning_rate(global_step)
    optimizer = schedule.optimizer(learning_rate)
  elif learning_rate is None:
    raise ValueError('train() needs the learning_rate sync_optimizer uses.')
  else:
    optimizer = sync_optimizer
  _scalar_summary('learning_rate', learning_rate)

  # Generate moving averages of all losses and associated summaries.
  loss_averages_op = add_loss_summaries(total_loss, loss_terms)

  # Compute gradients.
  if grads_and_vars is None:
    with tf.control_dependencies([loss_averages_op]):
      grads_and_vars = precision_lib.gradients(total_loss, precision)

  # Apply gradients.
  apply_gradient_op, grads_and_vars = precision_lib.apply_gradients(
      optimizer, grads_and_vars, global_step, precision,
      synchronous=sync_optimizer is not None)
  add_gradient_summaries(grads_and_vars,
                         finite_only=precision == 'mixed_float16')

  if sync_optimizer is None:
    # Track the moving averages of all trainable variables.
    variable_averages = schedule.moving_averages(global_step)
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


def class_probabilities(images, flip=False, precision='float32'):
  """Softmax over the classes, float32 [batch, NUM_CLASSES], for evaluation.

  With flip, each image and its mirror image go through the network in one
  pass and their softmax outputs are averaged (test-time augmentation).
  precision is inference's.
  """
  if not flip:
    return tf.nn.softmax(tf.cast(inference(images, precision=precision),
                                 tf.float32))
  both = inference(tf.concat([images, tf.reverse(images, [2])], axis=0),
                   precision=precision)
  halves = tf.split(tf.nn.softmax(tf.cast(both, tf.float32)), 2)
  return tf.multiply(0.5, halves[0] + halves[1])
