"""The local response normalization of the CIFAR-10 network, fast on CPU.

The same function as tf.nn.lrn, computed differently: float32 and bfloat16
tensors on CPU go to the fused kernel of lrn_kernel.cc where it builds,
everything else (GPU, float16, graphs built under portable_graph() for
export) to TensorFlow ops with a faster gradient than tf.nn.lrn's.
"""
import contextlib
import functools
import threading

import numpy as np
import tensorflow.compat.v1 as tf

from cifar10 import lrn_kernel


def local_response_normalization(x, depth_radius, bias, alpha, beta,
                                 name=None):
  """tf.nn.lrn's function, much faster on CPU: fused_lrn or band_lrn.

  y = x * (bias + alpha * sum over the 2*depth_radius+1 nearest channels of
  x**2) ** -beta. TensorFlow's LRNGrad kernel on CPU is a scalar loop with a
  pow and divides per element (oneDNN only rewrites depth_radius 2), and it
  has no bfloat16 LRN at all. A float32 or bfloat16 x on CPU goes to
  fused_lrn where the kernel is available, anything else to band_lrn (also
  under portable_graph()): both window sums as
  one small matrix multiply with a band matrix, and the gradient
  g * norm**-beta - 2 * alpha * beta * x * window_sum(g * y / norm).
  tests/test_cifar10_model.py and tests/test_lrn_kernel.py check them
  against tf.nn.lrn; the README (Speed) compares their speed.
  """
  if fused_kernel_for(x) is not None:
    return fused_lrn(x, depth_radius, bias, alpha, beta, name)
  return band_lrn(x, depth_radius, bias, alpha, beta, name)


_portable = threading.local()


@contextlib.contextmanager
def portable_graph():
  """Within it, the LRN is built of TensorFlow's own ops only: for graphs that
  leave this project (SavedModel, TensorFlow Lite, frozen graphs), which must
  load where the fused kernel was never built."""
  depth = getattr(_portable, 'depth', 0)
  _portable.depth = depth + 1
  try:
    yield
  finally:
    _portable.depth = depth


def fused_kernel_for(x):
  """The fused kernel's ops where they are what x should use, else None.

  They are for float32 and bfloat16 tensors on CPU (TensorFlow has no
  bfloat16 LRN kernel at all, and its float32 ones are several passes):
  placed on a CPU, or placed nowhere on a machine without GPUs (where
  TensorFlow would put an unplaced op on a GPU); never under
  portable_graph(). README, Speed, has how much faster they are.
  """
  if (x.dtype.base_dtype not in (tf.float32, tf.bfloat16) or
      getattr(_portable, 'depth', 0)):
    return None
  device = (x.device or '').upper()
  if 'GPU' in device or ('CPU' not in device and _gpus_visible()):
    return None
  return lrn_kernel.load()


@functools.lru_cache(maxsize=None)
def _gpus_visible():
  return bool(tf.config.list_physical_devices('GPU'))


def band_lrn(x, depth_radius, bias, alpha, beta, name=None):
  """local_response_normalization as TensorFlow ops, in x's dtype."""
  with tf.name_scope(name, 'LRN', [x]) as scope:
    return tf.identity(_band_lrn(x, depth_radius, bias, alpha, beta),
                       name=scope)


def fused_lrn(x, depth_radius, bias, alpha, beta, name=None):
  """local_response_normalization as the fused kernel, float32 or bfloat16.

  Raises lrn_kernel.BuildError where the kernel is not available.
  """
  ops = lrn_kernel.load()
  if ops is None:
    raise lrn_kernel.BuildError(lrn_kernel.unavailable_reason())
  attrs = dict(depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta)

  @tf.custom_gradient
  def _lrn(x):
    def grad(g):
      return ops.tutorial_lrn_grad(g, x, **attrs)
    return ops.tutorial_lrn(x, **attrs), grad

  with tf.name_scope(name, 'LRN', [x]) as scope:
    return tf.identity(_lrn(x), name=scope)


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
