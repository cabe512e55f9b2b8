"""The local response normalization two ways: TensorFlow ops, or the fused
kernel of lrn_kernel.cc.

Both compute tf.nn.lrn's function: y = x * (bias + alpha * sum over the
2*depth_radius+1 nearest channels of x**2) ** -beta. TensorFlow's own LRNGrad
on CPU is a scalar loop with a pow and divides per element (oneDNN only
rewrites depth_radius 2, the tutorial uses 4), and it has no bfloat16 LRN at
all. band_lrn does both window sums as one small matrix multiply with a band
matrix, and the gradient as
g * norm**-beta - 2 * alpha * beta * x * window_sum(g * y / norm);
fused_lrn does the LRN and its gradient in one pass over each pixel.
tests/test_kernels.py checks fused_lrn, and tests/test_cifar10_model.py
band_lrn, against tf.nn.lrn.
"""
import numpy as np
import tensorflow.compat.v1 as tf


def band_lrn(x, depth_radius, bias, alpha, beta, name=None):
  """The LRN as TensorFlow ops, in x's dtype."""
  with tf.name_scope(name, 'LRN', [x]) as scope:
    return tf.identity(_band_lrn(x, depth_radius, bias, alpha, beta),
                       name=scope)


def fused_lrn(ops, x, depth_radius, bias, alpha, beta, name=None):
  """The LRN as the fused kernel (ops: the loaded library), float32 or
  bfloat16; it computes in float32 inside."""
  attrs = dict(depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta)

  @tf.custom_gradient
  def _lrn(x):
    def grad(g):
      return ops.tutorial_lrn_grad(g, x, **attrs)
    return ops.tutorial_lrn(x, **attrs), grad

  with tf.name_scope(name, 'LRN', [x]) as scope:
    return tf.identity(_lrn(x), name=scope)


def _band_lrn(x, depth_radius, bias, alpha, beta):
  """band_lrn's arithmetic, in the current name scope."""
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
