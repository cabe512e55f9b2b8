"""Checks a freshly built kernel library in a process of its own, and times it.

    python -m cifar10.kernels.check LIBRARY

build.check runs this before any command loads a library: a damaged file
crashes this process, not the command. It loads the library, checks that
its ops give TensorFlow's numbers, times each kernel against TensorFlow's
ops at the shapes the network uses (the median of alternating runs), and
prints one line of JSON: which kernels this machine should use. A failure
is a line 'check: REASON' and exit status 1.
"""
import json
import os
import sys
import time

import numpy as np
import tensorflow.compat.v1 as tf

from cifar10.kernels import distort_ops
from cifar10.kernels import lrn_ops

# The network's LRN: norm1 and norm2 both see [batch, 12, 12, 64].
LRN_SHAPE = (128, 12, 12, 64)
LRN_SETTINGS = dict(depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
# A queue runner's read: cifar10_input.RECORDS_PER_READ records of 32x32x3.
DISTORT_BATCH = 1024
CROP = 24
# Alternating timed runs of each variant, after the warm-up ones. The tests,
# which check the check rather than this machine, ask for fewer.
WARMUP_RUNS = 3
TIMED_RUNS = int(os.environ.get('CIFAR10_KERNEL_CHECK_RUNS', '15'))


def _median_ms(session, fetches):
  """The median wall time of session.run(fetches), alternating between the
  variants (a dict name -> fetch) so that a busy moment hits them alike."""
  for _ in range(WARMUP_RUNS):
    for fetch in fetches.values():
      session.run(fetch)
  times = {name: [] for name in fetches}
  for _ in range(TIMED_RUNS):
    for name, fetch in fetches.items():
      started = time.perf_counter()
      session.run(fetch)
      times[name].append((time.perf_counter() - started) * 1000.0)
  return {name: float(np.median(values)) for name, values in times.items()}


def _lrn_choice(ops, dtype):
  """Checks the fused LRN against TensorFlow's ops in dtype, and times both
  (forward and gradient, as a training step runs them)."""
  rng = np.random.RandomState(0)
  with tf.Graph().as_default():
    x = tf.Variable(rng.standard_normal(LRN_SHAPE).astype(np.float32) * 30)
    upstream = tf.constant(rng.standard_normal(LRN_SHAPE), tf.float32)
    low = dtype != tf.float32
    x_in = tf.cast(x, dtype)
    fused = lrn_ops.fused_lrn(ops, x_in, **LRN_SETTINGS)
    # TensorFlow's ops compute a low-precision LRN in float32 between casts.
    by_ops = tf.cast(lrn_ops.band_lrn(tf.cast(x_in, tf.float32), **LRN_SETTINGS),
                     dtype)
    runs = {}
    for name, y in (('fused', fused), ('ops', by_ops)):
      grad = tf.gradients(y, x_in, tf.cast(upstream, dtype))[0]
      runs[name] = [tf.cast(y, tf.float32), tf.cast(grad, tf.float32)]
    # TensorFlow's LRN, in float32, of the same (rounded) input and upstream
    # gradient: the kernel rounds only its results.
    x_ref = tf.cast(x_in, tf.float32)
    reference = tf.nn.lrn(x_ref, **LRN_SETTINGS)
    reference_grad = tf.gradients(reference, x_ref,
                                  tf.cast(tf.cast(upstream, dtype),
                                          tf.float32))[0]
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      (y, grad), (y_ref, grad_ref) = session.run(
          [runs['fused'], [reference, reference_grad]])
      # Rounded to bfloat16 once: within half its step (2**-8 relative).
      tolerance = 2 ** -8 if low else 1e-4
      if not (np.allclose(y, y_ref, rtol=tolerance, atol=1e-4) and
              np.allclose(grad, grad_ref, rtol=tolerance, atol=1e-3)):
        raise ValueError('its LRN in %s differs from tf.nn.lrn' % dtype.name)
      # Their ops as run targets: what a step computes, without fetching it.
      times = _median_ms(session, {name: [t.op for t in fetch]
                                   for name, fetch in runs.items()})
  return _choice(times, 'x'.join(map(str, LRN_SHAPE)))


def _distort_choice(ops):
  """Checks the fused distortions against TensorFlow's ops and times both,
  on one thread: they run in a queue runner's thread, beside the step."""
  rng = np.random.RandomState(1)
  count = DISTORT_BATCH
  with tf.Graph().as_default():
    images = tf.constant(rng.randint(0, 256, (count, 3, 32, 32)), tf.uint8)
    args = (images,
            tf.constant(rng.randint(0, 32 - CROP + 1, count), tf.int32),
            tf.constant(rng.randint(0, 32 - CROP + 1, count), tf.int32),
            tf.constant(rng.uniform(size=count) < 0.5),
            tf.zeros([count]),
            tf.constant(rng.uniform(0.2, 1.8, count), tf.float32))
    fused = distort_ops.fused_distort(ops, *args, size=CROP, depth_major=True)
    by_ops = distort_ops.ops_distort(*args, size=CROP, depth_major=True)
    config = tf.ConfigProto(intra_op_parallelism_threads=1,
                            inter_op_parallelism_threads=1)
    with tf.Session(config=config) as session:
      a, b = session.run([fused, by_ops])
      if not np.allclose(a, b, rtol=1e-4, atol=1e-4):
        raise ValueError('its distortions differ from TensorFlow\'s ops')
      times = _median_ms(session, {'fused': fused.op, 'ops': by_ops.op})
  return _choice(times, '%d images' % count)


def _choice(times, shape):
  return {'fused_ms': round(times['fused'], 3),
          'ops_ms': round(times['ops'], 3),
          # Where the kernel is slower, TensorFlow's ops are used instead.
          'fused': times['fused'] <= times['ops'],
          'shape': shape}


def main(argv):
  if len(argv) != 2:
    print('usage: python -m cifar10.kernels.check LIBRARY')
    return 2
  try:
    ops = tf.load_op_library(argv[1])
    for name in ('tutorial_lrn', 'tutorial_lrn_grad',
                 'tutorial_distort_images'):
      if not hasattr(ops, name):
        raise ValueError('it has no %s op: not this project\'s kernels' % name)
    choices = {'lrn': {'float32': _lrn_choice(ops, tf.float32),
                       'bfloat16': _lrn_choice(ops, tf.bfloat16)},
               'distort': {'uint8': _distort_choice(ops)}}
  except Exception as e:  # pylint: disable=broad-except
    print('check: %s' % (str(e).strip().splitlines() or [type(e).__name__])[0])
    return 1
  print(json.dumps({'choices': choices, 'tensorflow': tf.__version__}))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
