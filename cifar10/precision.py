"""--precision: the arithmetic of the CIFAR-10 network, and float16 loss scaling.

The precisions have Keras's policy names. In all three the variables, the
gradients applied, the optimizer, the moving averages and so the checkpoints
are float32; the mixed ones compute the convolutions, the dense layers, the
pooling and the ReLUs in bfloat16 or float16, and the LRN, the loss, the
softmax and in_top_k in float32 (a bfloat16 LRN on CPU inside the fused
kernel, which reads and writes bfloat16). One mechanism does it, around the
model rather than inside its layers:

    with precision.computing_in(FLAGS.precision) as dtype:
      logits = cifar10.inference(tf.cast(images, dtype))

a variable scope whose custom getter keeps each variable float32 and hands
the layer a copy cast to the compute dtype: the tf.compat.v1 idiom of
mixed-precision training. The tutorial's --use_fp16 (float16 variables and
arithmetic, no loss scaling) is the fourth mode, 'float16'.
"""
import contextlib

import tensorflow.compat.v1 as tf

PRECISIONS = ('float32', 'mixed_bfloat16', 'mixed_float16')
_COMPUTE_DTYPES = {'float32': tf.float32, 'mixed_bfloat16': tf.bfloat16,
                   'mixed_float16': tf.float16, 'float16': tf.float16}
# mixed_float16's dynamic loss scaling, with Keras's LossScaleOptimizer's
# values: the scale starts at 2**15, halves at each step whose gradients are
# not finite (that step is skipped) and doubles after 2,000 finite steps.
INITIAL_LOSS_SCALE = 2.0 ** 15
LOSS_SCALE_GROWTH_STEPS = 2000


def compute_dtype(precision):
  """The dtype precision computes the convolutions and dense layers in."""
  return _COMPUTE_DTYPES[precision]


def _stored_in(storage, compute):
  """A custom getter: each float variable made and kept in storage dtype,
  and handed to the model cast to compute."""

  def stored_in_getter(getter, name, *args, **kwargs):
    if kwargs.get('dtype') not in (None, tf.float32):
      return getter(name, *args, **kwargs)
    kwargs['dtype'] = storage
    variable = getter(name, *args, **kwargs)
    if storage == compute:
      return variable
    read = tf.cast(variable, compute)
    read.stored_variable = variable  # For stored_variable().
    return read

  return stored_in_getter


def stored_variable(x):
  """The variable x reads under computing_in (x itself elsewhere): what a
  weight decay is computed of, in float32 on the weights as they are kept."""
  return getattr(x, 'stored_variable', x)


@contextlib.contextmanager
def computing_in(precision='float32'):
  """Within it, the model computes in precision's dtype, which it yields.

  The variables it makes (float32, as the model asks for them) stay float32
  under the mixed precisions and are read cast to the compute dtype; under
  'float16' (--use_fp16) they are float16 themselves, as in the tutorial.
  The caller casts the model's input to the yielded dtype.
  """
  compute = compute_dtype(precision)
  if precision == 'float32':
    yield compute
    return
  storage = tf.float16 if precision == 'float16' else tf.float32
  with tf.variable_scope(tf.get_variable_scope(),
                         custom_getter=_stored_in(storage, compute),
                         auxiliary_name_scope=False):
    yield compute


def loss_scale_variables(colocate_with):
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
  scale, _ = loss_scale_variables(loss)
  grads = tf.gradients(loss * scale, variables)
  return [(None if g is None else g / scale, v)
          for g, v in zip(grads, variables)]


def update_loss_scale(grads_and_vars):
  """Whether every gradient is finite, and the op that moves the loss scale.

  Also adds the scale's 'loss_scale' summary.
  """
  grads = [g for g, _ in grads_and_vars if g is not None]
  finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads],
                         name='gradients_finite')
  scale, finite_steps = loss_scale_variables(grads[0])
  with tf.control_dependencies(grads):  # They read the scale first.
    steps = tf.where(finite, finite_steps + 1, tf.zeros_like(finite_steps))
    grow = steps >= LOSS_SCALE_GROWTH_STEPS
    new_scale = tf.where(finite, tf.where(grow, scale * 2.0, scale),
                         tf.maximum(scale / 2.0, 1.0))
    update = tf.group(scale.assign(new_scale),
                      finite_steps.assign(tf.where(grow,
                                                   tf.zeros_like(steps),
                                                   steps)))
  # Under exactly this tag, as cifar10.py's summaries.
  tf.add_to_collection(tf.GraphKeys.SUMMARIES, tf.raw_ops.ScalarSummary(
      tags='loss_scale', values=scale))
  return finite, update


def apply_gradients(optimizer, grads_and_vars, global_step,
                    precision='float32', synchronous=False):
  """optimizer's apply_gradients, with mixed_float16's loss scaling.

  With mixed_float16 a step whose gradients are not finite leaves the
  variables as they are and halves the loss scale; with synchronous (a
  SyncReplicasOptimizer, where no worker can skip a step alone) it applies
  zero gradients instead.

  Returns:
    The op, and the (gradient, variable) pairs it applies.
  """
  if precision != 'mixed_float16':
    return (optimizer.apply_gradients(grads_and_vars, global_step=global_step),
            grads_and_vars)
  finite, update_loss_scale_op = update_loss_scale(grads_and_vars)
  if synchronous:
    grads_and_vars = [(tf.where(finite, g, tf.zeros_like(g)), v)
                      for g, v in grads_and_vars]
    apply_op = optimizer.apply_gradients(grads_and_vars,
                                         global_step=global_step)
  else:
    def apply():
      with tf.control_dependencies([optimizer.apply_gradients(
          grads_and_vars, global_step=global_step)]):
        return tf.identity(finite)

    def skip():
      with tf.control_dependencies([tf.assign_add(global_step, 1)]):
        return tf.identity(finite)

    apply_op = tf.cond(finite, apply, skip).op
  return tf.group(apply_op, update_loss_scale_op), grads_and_vars
