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
local4 -> softmax_linear; 1,068,298 parameters, ~19.5M multiply-adds per image.
"""
import math
import re

from absl import flags
import numpy as np
import tensorflow.compat.v1 as tf

from cifar10 import cifar10_input
from cli_support import entry

FLAGS = flags.FLAGS

# Global constants describing the CIFAR-10 data set.
IMAGE_SIZE = cifar10_input.IMAGE_SIZE
NUM_CLASSES = cifar10_input.NUM_CLASSES
NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN = cifar10_input.NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN
NUM_EXAMPLES_PER_EPOCH_FOR_EVAL = cifar10_input.NUM_EXAMPLES_PER_EPOCH_FOR_EVAL

# Constants describing the training process.
MOVING_AVERAGE_DECAY = 0.9999     # The decay to use for the moving average.
NUM_EPOCHS_PER_DECAY = 350.0      # Epochs after which learning rate decays.
LEARNING_RATE_DECAY_FACTOR = 0.1  # Learning rate decay factor.
INITIAL_LEARNING_RATE = 0.1       # Initial learning rate.

# The faster schedule for the same network (--schedule=fast; README, Time to
# accuracy): Nesterov momentum with the learning rate warmed up linearly over
# the first FAST_WARMUP_FRACTION of the steps and then brought linearly to zero
# at the end of --fast_epochs, label smoothing, and a shorter moving average
# of the weights: the tutorial's 0.9999 averages over ~10K steps, a large part
# of a short run, and so lags behind it.
FAST_PEAK_LEARNING_RATE = 0.02
FAST_MOMENTUM = 0.9
FAST_WARMUP_FRACTION = 0.15
FAST_LABEL_SMOOTHING = 0.1
FAST_MOVING_AVERAGE_DECAY = 0.999
DEFAULT_FAST_EPOCHS = 100
SCHEDULES = ('tutorial', 'fast')

# --precision, with Keras's policy names. In all three the variables, the
# gradients applied, the optimizer, the moving averages and so the
# checkpoints are float32; the mixed ones compute the convolutions, the dense
# layers, the pooling and the ReLUs in bfloat16 or float16, and the LRN, the
# loss, the softmax and in_top_k in float32.
PRECISIONS = ('float32', 'mixed_bfloat16', 'mixed_float16')
_COMPUTE_DTYPES = {'float32': tf.float32, 'mixed_bfloat16': tf.bfloat16,
                   'mixed_float16': tf.float16}
# mixed_float16's dynamic loss scaling, with Keras's LossScaleOptimizer's
# values: the scale starts at 2**15, halves at each step whose gradients are
# not finite (that step is skipped) and doubles after 2,000 finite steps.
INITIAL_LOSS_SCALE = 2.0 ** 15
LOSS_SCALE_GROWTH_STEPS = 2000

DEFAULT_BATCH_SIZE = 128
DEFAULT_DATA_DIR = '/tmp/cifar10_data'

# If a model is trained with multiple GPUs, prefix all Op names with tower_name
# to differentiate the operations. Note that this prefix is removed from the
# names of the summaries when visualizing a model.
TOWER_NAME = 'tower'


def define_flags():
  """Defines the flags every CIFAR-10 script shares. Call once, from run()."""
  flags.DEFINE_integer('batch_size', DEFAULT_BATCH_SIZE,
                       'Number of images to process in a batch (images).',
                       lower_bound=1)
  flags.DEFINE_string('data_dir', DEFAULT_DATA_DIR,
                      'Path to the CIFAR-10 data directory (a folder holding '
                      'cifar-10-batches-bin/).')
  entry.require_folder('data_dir')
  flags.DEFINE_boolean('use_fp16', False,
                       'Train the model using fp16 (true/false).')


def define_precision_flag():
  """--precision, for the trainers and evaluation."""
  flags.DEFINE_enum('precision', 'float32', PRECISIONS,
                    "The arithmetic, with Keras's policy names. 'float32': "
                    "all float32. 'mixed_bfloat16': bfloat16 convolutions and "
                    'dense layers, for CPUs with bfloat16 units (AVX512_BF16, '
                    "AMX). 'mixed_float16': float16 with loss scaling, for "
                    'GPUs. Variables and checkpoints are float32 in all.')
  flags.register_multi_flags_validator(
      ['precision', 'use_fp16'],
      lambda values: values['precision'] == 'float32' or not values['use_fp16'],
      message='--use_fp16 (float16 variables) and a mixed --precision '
      '(float32 variables) exclude each other: pass one of them.')


def compute_dtype(precision):
  """The dtype --precision computes the convolutions and dense layers in."""
  return _COMPUTE_DTYPES[precision]


def _as(x, dtype):
  """x in dtype, cast only where it differs."""
  return x if x.dtype.base_dtype == dtype else tf.cast(x, dtype)


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

  Creates a summary that provides a histogram of activations.
  Creates a summary that measures the sparsity of activations.
  """
  # Remove 'tower_[0-9]/' from the name in case this is a multi-GPU training
  # session. This helps the clarity of presentation on tensorboard.
  tensor_name = re.sub('%s_[0-9]*/' % TOWER_NAME, '', x.op.name)
  x = _as(x, tf.float32)  # Summaries of low-precision activations too.
  _histogram_summary(tensor_name + '/activations', x)
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
                     use_fp16=False):
  """Construct distorted input for CIFAR training using the Reader ops."""
  images, labels = cifar10_input.distorted_inputs(data_dir=data_dir,
                                                  batch_size=batch_size)
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


def local_response_normalization(x, depth_radius, bias, alpha, beta,
                                 name=None):
  """tf.nn.lrn's function, with a gradient that runs several times faster on CPU.

  y = x * (bias + alpha * sum over the 2*depth_radius+1 nearest channels of
  x**2) ** -beta. TensorFlow's LRNGrad kernel on CPU is a scalar loop with a
  pow and divides per element (oneDNN only rewrites depth_radius 2); here
  both window sums are one small matrix multiply with a band matrix, and the
  gradient is g * norm**-beta - 2 * alpha * beta * x * window_sum(g * y / norm).
  tests/test_cifar10_model.py checks both against tf.nn.lrn.
  """
  with tf.name_scope(name, 'LRN', [x]) as scope:
    return tf.identity(_band_lrn(x, depth_radius, bias, alpha, beta),
                       name=scope)


def _band_lrn(x, depth_radius, bias, alpha, beta):
  """local_response_normalization's arithmetic, in the current name scope."""
  depth = x.shape[-1]
  channel = np.arange(depth)
  band = np.abs(channel[:, None] - channel[None, :]) <= depth_radius
  window = tf.constant(band.astype(x.dtype.as_numpy_dtype))

  def window_sum(t):
    return tf.reshape(tf.matmul(tf.reshape(t, [-1, depth]), window),
                      tf.shape(t))

  @tf.custom_gradient
  def _lrn(x):
    norm = bias + alpha * window_sum(tf.square(x))
    if beta == 0.75:  # The tutorial's beta: two square roots beat a pow.
      inverse_sqrt = tf.math.rsqrt(norm)
      scale = inverse_sqrt * tf.sqrt(inverse_sqrt)
    else:
      scale = tf.pow(norm, -beta)

    def grad(g):
      g_scaled = g * scale
      return g_scaled - (2 * alpha * beta) * x * window_sum(g_scaled * x / norm)

    return x * scale, grad

  return _lrn(x)


def inference(images, lrn=local_response_normalization, precision='float32',
              lrn_dtype=None):
  """Build the CIFAR-10 model.

  Args:
    images: [batch, 24, 24, 3] float tensor from distorted_inputs() or inputs().
      With precision float32 the variables take the images' dtype (float16
      with --use_fp16).
    lrn: the local response normalization, called as tf.nn.lrn is (the
      speed benchmark passes tf.nn.lrn itself to compare).
    precision: one of PRECISIONS. The mixed ones keep float32 variables and
      compute in compute_dtype(precision).
    lrn_dtype: the dtype the LRN computes in; default: float32 with a mixed
      precision (the benchmark measures the other choice), else the
      activations' dtype.

  Returns:
    Logits, [batch, NUM_CLASSES], in the dtype of the computation.
  """
  # We instantiate all variables using tf.get_variable() instead of
  # tf.Variable() in order to share variables across multiple GPU training runs.
  if precision == 'float32':
    dtype = compute = images.dtype.base_dtype
  else:
    dtype, compute = tf.float32, compute_dtype(precision)
    images = _as(images, compute)
  if lrn_dtype is None:
    lrn_dtype = tf.float32 if precision != 'float32' else compute

  def normalize(x, name):
    return _as(lrn(_as(x, lrn_dtype), 4, bias=1.0, alpha=0.001 / 9.0,
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


def define_schedule_flags():
  """The trainers' flags that choose the training schedule."""
  flags.DEFINE_enum('schedule', 'tutorial', SCHEDULES,
                    "'tutorial': SGD at 0.1, divided by 10 every 350 epochs, "
                    "until --max_steps. 'fast': Nesterov momentum, a linear "
                    'warm-up and decay to zero over --fast_epochs, label '
                    'smoothing; stops at the end of --fast_epochs.')
  flags.DEFINE_float('fast_epochs', DEFAULT_FAST_EPOCHS,
                     'Length of the fast schedule (epochs of 50,000 images).')
  flags.register_validator('fast_epochs', lambda epochs: epochs > 0,
                           message='--fast_epochs must be more than 0.')


class Schedule(object):
  """How the network is trained: optimizer, learning rate, loss, averaging."""

  def __init__(self, name='tutorial', examples_per_step=DEFAULT_BATCH_SIZE,
               fast_epochs=DEFAULT_FAST_EPOCHS):
    if name not in SCHEDULES:
      raise ValueError('Unknown schedule %r: use one of %s.' %
                       (name, ', '.join(SCHEDULES)))
    self.name = name
    self.examples_per_step = examples_per_step
    fast = name == 'fast'
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
    warmup_steps = max(1.0, FAST_WARMUP_FRACTION * self.last_step)
    rising = step / warmup_steps
    falling = (self.last_step - step) / (self.last_step - warmup_steps)
    return tf.maximum(0.0, FAST_PEAK_LEARNING_RATE *
                      tf.minimum(rising, falling), name='learning_rate')

  def optimizer(self, lr):
    if self.name == 'tutorial':
      return tf.train.GradientDescentOptimizer(lr)
    return tf.train.MomentumOptimizer(lr, FAST_MOMENTUM, use_nesterov=True)


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


def learning_rate(global_step, batch_size=DEFAULT_BATCH_SIZE):
  """The tutorial's schedule: 0.1, divided by 10 every 350 epochs."""
  num_batches_per_epoch = NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN / batch_size
  decay_steps = int(num_batches_per_epoch * NUM_EPOCHS_PER_DECAY)
  return tf.train.exponential_decay(INITIAL_LEARNING_RATE,
                                    global_step,
                                    decay_steps,
                                    LEARNING_RATE_DECAY_FACTOR,
                                    staircase=True)


def add_gradient_summaries(grads_and_vars):
  """Histograms of the trainable variables and of their gradients."""
  for var in tf.trainable_variables():
    _histogram_summary(var.op.name, var)
  for grad, var in grads_and_vars:
    if grad is not None:
      _histogram_summary(var.op.name + '/gradients', grad)


def _loss_scale_variables(colocate_with):
  """mixed_float16's loss scale and its count of finite steps in a row.

  Local variables, left out of checkpoints, so that a checkpoint is the same
  whatever the precision; a resumed run starts the scale afresh. Kept where
  the loss is computed (on the worker, in a cluster).
  """
  with tf.variable_scope('loss_scaling', reuse=tf.AUTO_REUSE), \
      tf.colocate_with(colocate_with):
    local = [tf.GraphKeys.LOCAL_VARIABLES]
    scale = tf.get_variable(
        'scale', [], tf.float32, trainable=False, collections=local,
        initializer=tf.constant_initializer(INITIAL_LOSS_SCALE))
    finite_steps = tf.get_variable(
        'finite_steps', [], tf.int64, trainable=False, collections=local,
        initializer=tf.zeros_initializer())
  return scale, finite_steps


def gradients(loss, precision='float32'):
  """(gradient, variable) pairs of loss for every trainable variable.

  With mixed_float16 these are the gradients of the loss times the loss
  scale, divided by it again: float16 gradients too small to represent
  would otherwise flush to zero.
  """
  variables = tf.trainable_variables()
  if precision != 'mixed_float16':
    return list(zip(tf.gradients(loss, variables), variables))
  scale, _ = _loss_scale_variables(loss)
  grads = tf.gradients(loss * scale, variables)
  return [(None if g is None else g / scale, v)
          for g, v in zip(grads, variables)]


def _update_loss_scale(grads_and_vars):
  """Whether every gradient is finite, and the op that moves the loss scale."""
  grads = [g for g, _ in grads_and_vars if g is not None]
  finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads],
                         name='gradients_finite')
  scale, finite_steps = _loss_scale_variables(grads[0])
  with tf.control_dependencies(grads):  # They read the scale first.
    steps = tf.where(finite, finite_steps + 1, tf.zeros_like(finite_steps))
    grow = steps >= LOSS_SCALE_GROWTH_STEPS
    new_scale = tf.where(finite, tf.where(grow, scale * 2.0, scale),
                         tf.maximum(scale / 2.0, 1.0))
    update = tf.group(scale.assign(new_scale),
                      finite_steps.assign(tf.where(grow,
                                                   tf.zeros_like(steps),
                                                   steps)))
  _scalar_summary('loss_scale', scale)
  return finite, update


def train(total_loss, global_step, batch_size=DEFAULT_BATCH_SIZE,
          schedule=None, grads_and_vars=None, loss_terms=None,
          wrap_optimizer=None, precision='float32'):
  """Builds the op that trains the CIFAR-10 model one step: every trainer's.

  Creates the schedule's learning rate and optimizer and the moving averages
  of the losses (with their summaries), applies the gradients, then moves the
  moving averages of the trainable variables, which evaluation restores.

  Args:
    total_loss: Total loss from loss(); for towers, the mean over towers.
    global_step: Integer Variable counting the number of training steps
      processed.
    batch_size: images per step, which sets how many steps an epoch is.
    schedule: a Schedule (default: the tutorial's, for batch_size).
    grads_and_vars: (gradient, variable) pairs computed by the caller, such
      as the towers' averaged gradients; default: the gradients of
      total_loss, computed here.
    loss_terms: the terms of total_loss to average and summarise (default:
      the 'losses' collection).
    wrap_optimizer: wrap_optimizer(optimizer, variable_averages) returns an
      optimizer wrapping the schedule's, such as the distributed trainer's
      SyncReplicasOptimizer; that optimizer then applies the moving averages
      of the variables itself.
    precision: one of PRECISIONS. With mixed_float16 (loss scaling) a step
      whose gradients are not finite leaves the variables as they are (in a
      synchronous cluster, applies zero gradients: no worker can skip a
      step alone) and halves the loss scale.

  Returns:
    train_op: op for training.
  """
  if schedule is None:
    schedule = Schedule('tutorial', batch_size)
  lr = schedule.learning_rate(global_step)
  _scalar_summary('learning_rate', lr)

  # Generate moving averages of all losses and associated summaries.
  loss_averages_op = add_loss_summaries(total_loss, loss_terms)

  variable_averages = tf.train.ExponentialMovingAverage(
      schedule.moving_average_decay, global_step)
  opt = schedule.optimizer(lr)
  if wrap_optimizer is not None:
    opt = wrap_optimizer(opt, variable_averages)

  # Compute gradients.
  if grads_and_vars is None:
    with tf.control_dependencies([loss_averages_op]):
      grads_and_vars = gradients(total_loss, precision)

  # Apply gradients.
  if precision != 'mixed_float16':
    apply_gradient_op = opt.apply_gradients(grads_and_vars,
                                            global_step=global_step)
  else:
    finite, update_loss_scale_op = _update_loss_scale(grads_and_vars)
    if wrap_optimizer is not None:
      grads_and_vars = [(tf.where(finite, g, tf.zeros_like(g)), v)
                        for g, v in grads_and_vars]
      apply_gradient_op = opt.apply_gradients(grads_and_vars,
                                              global_step=global_step)
    else:
      def apply():
        with tf.control_dependencies([opt.apply_gradients(
            grads_and_vars, global_step=global_step)]):
          return tf.identity(finite)

      def skip():
        with tf.control_dependencies([tf.assign_add(global_step, 1)]):
          return tf.identity(finite)

      apply_gradient_op = tf.cond(finite, apply, skip).op
    apply_gradient_op = tf.group(apply_gradient_op, update_loss_scale_op)
  add_gradient_summaries(grads_and_vars)
  if wrap_optimizer is not None:
    return tf.group(apply_gradient_op, loss_averages_op, name='train')

  # Track the moving averages of all trainable variables.
  with tf.control_dependencies([apply_gradient_op]):
    variables_averages_op = variable_averages.apply(tf.trainable_variables())
  return tf.group(variables_averages_op, loss_averages_op, name='train')


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
