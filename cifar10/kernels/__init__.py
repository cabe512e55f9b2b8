"""The speed paths of the CIFAR-10 tutorial, behind two plain functions.

    kernels.lrn(x, depth_radius, bias, alpha, beta, name)    # as tf.nn.lrn
    kernels.distort_batch(images, offset_y, offset_x, flip,
                          brightness_delta, contrast_factor, size)

cifar10.py calls the first and cifar10_input.py the second, and neither
knows what is behind them: on a CPU, the fused kernels of lrn_kernel.cc and
distort_kernel.cc where they build and this machine's check found them
faster than TensorFlow's ops (build.py); everywhere else (a GPU, float16,
no compiler, CIFAR10_LRN_KERNEL=off or CIFAR10_DISTORT_KERNEL=off, a graph
built under portable()) TensorFlow's ops, the same numbers to within
rounding. `python -m cifar10.kernels` builds and checks them ahead and
prints what this machine uses and why.

    with kernels.portable():       # graphs that leave the project (exports)
    with kernels.lrn_override(tf.nn.lrn, tf.float32):  # to compare (benchmark)

TensorFlow is imported where it is used, not when this package is: so
that `python -m cifar10.kernels` keeps its start-up notices off the console.
"""
import contextlib
import functools
import os
import sys
import threading

from cifar10.kernels import build

# The variables that switch off each kernel's use (the library is the same).
LRN_SWITCH = 'CIFAR10_LRN_KERNEL'
DISTORT_SWITCH = 'CIFAR10_DISTORT_KERNEL'
_OFF = ('off', '0', 'no', 'false')

_loaded = {}  # cache folder -> (the loaded library, its check's record)
# The library's checksum -> its ops: TensorFlow registers a library's ops
# once per process, so a second copy of it loads as a module without them.
_ops_by_checksum = {}
_unavailable = {}  # cache folder -> why there is none
_choices = threading.local()  # portable() and lrn_override()'s settings


def library(switch=LRN_SWITCH):
  """(the loaded kernels' ops, the record of their check on this machine),
  or (None, None) where the use that asks (switch: LRN_SWITCH or
  DISTORT_SWITCH) is switched off, or they cannot be built, checked or
  loaded; unavailable_reason() says why, and the first time one line on
  stderr does."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  if _switched_off(switch):
    return None, None
  folder = build.cache_dir()
  if folder not in _loaded:
    try:
      path, record = build.ready(folder)
      if record['sha256'] not in _ops_by_checksum:
        _ops_by_checksum[record['sha256']] = tf.load_op_library(path)
      _loaded[folder] = _ops_by_checksum[record['sha256']], record
    except build.BuildError as e:
      _unavailable[folder] = str(e)
      _loaded[folder] = None, None
      print('cifar10: the fused kernels are not used (%s); the LRN and the '
            'training-image distortions run as TensorFlow ops, slower.' % e,
            file=sys.stderr)
  return _loaded[folder]


def _switched_off(switch):
  return os.environ.get(switch, 'auto').lower() in _OFF


def unavailable_reason(switch=LRN_SWITCH):
  """Why library(switch) found none, or None where it did."""
  if _switched_off(switch):
    return '%s=%s' % (switch, os.environ[switch])
  return _unavailable.get(build.cache_dir())


@contextlib.contextmanager
def portable():
  """Within it, the LRN is built of TensorFlow's own ops only: for graphs
  that leave this project (SavedModel, TensorFlow Lite, frozen graphs),
  which must load where the kernels were never built."""
  with _setting('portable', True):
    yield


@contextlib.contextmanager
def lrn_override(function, dtype=None):
  """Within it, lrn() calls function (tf.nn.lrn's signature) instead,
  with its input and output in dtype (default: the activations'): the speed
  benchmark's way to compare LRNs inside the same network."""
  with _setting('lrn_override', (function, dtype)):
    yield


@contextlib.contextmanager
def _setting(name, value):
  saved = getattr(_choices, name, None)
  setattr(_choices, name, value)
  try:
    yield
  finally:
    setattr(_choices, name, saved)


def fused_lrn_ops(x):
  """The kernels' ops where the fused LRN is what x should use, else None:
  a float32 or bfloat16 x on a CPU (placed there, or placed nowhere on a
  machine without GPUs, where TensorFlow would put an unplaced op on a
  GPU), not under portable(), and where this machine's check found the
  kernel faster than TensorFlow's ops for that dtype."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  dtype = x.dtype.base_dtype
  if dtype not in (tf.float32, tf.bfloat16) or getattr(_choices, 'portable',
                                                        None):
    return None
  device = (x.device or '').upper()
  if 'GPU' in device or ('CPU' not in device and _gpus_visible()):
    return None
  ops, record = library(LRN_SWITCH)
  if ops is None or not build.uses(record, 'lrn', dtype.name):
    return None
  return ops


def lrn(x, depth_radius, bias, alpha, beta, name=None):
  """tf.nn.lrn's function, fast: the fused kernel where fused_lrn_ops says
  so, else TensorFlow's ops (band_lrn), computing a bfloat16 or float16 x in
  float32 between casts; the result is in x's dtype."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from cifar10.kernels import lrn_ops  # pylint: disable=g-import-not-at-top
  override = getattr(_choices, 'lrn_override', None)
  if override is not None:
    function, dtype = override
    dtype = dtype or x.dtype.base_dtype
    return tf.cast(function(tf.cast(x, dtype), depth_radius, bias=bias,
                            alpha=alpha, beta=beta, name=name),
                   x.dtype.base_dtype)
  ops = fused_lrn_ops(x)
  if ops is not None:
    return lrn_ops.fused_lrn(ops, x, depth_radius, bias, alpha, beta, name)
  # A cast to the dtype a tensor has already is the tensor itself.
  return tf.cast(lrn_ops.band_lrn(tf.cast(x, tf.float32), depth_radius, bias,
                                  alpha, beta, name), x.dtype.base_dtype)


def distort_batch(images, offset_y, offset_x, flip, brightness_delta,
                  contrast_factor, size, depth_major=False):
  """The training images' distortions of a uint8 batch (distort_ops.py
  has their arithmetic), float32 NHWC: the fused kernel where this machine's
  check found it faster, else TensorFlow's ops."""
  from cifar10.kernels import distort_ops  # pylint: disable=g-import-not-at-top
  ops, record = library(DISTORT_SWITCH)
  if ops is not None and build.uses(record, 'distort', 'uint8'):
    return distort_ops.fused_distort(ops, images, offset_y, offset_x, flip,
                                     brightness_delta, contrast_factor, size,
                                     depth_major)
  return distort_ops.ops_distort(images, offset_y, offset_x, flip,
                                 brightness_delta, contrast_factor, size,
                                 depth_major)


@functools.lru_cache(maxsize=None)
def _gpus_visible():
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  return bool(tf.config.list_physical_devices('GPU'))
