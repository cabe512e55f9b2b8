"""How fast the CIFAR-10 suite trains and evaluates, side by side in one run.

  python scripts/benchmark_speed.py --data_dir=../shared/datasets/cifar10

measures, for batch 128 on this machine, one after the other:
  0. the machine: CPU, cores, float32 matrix-multiply peak (numpy and
     TensorFlow), and from it the model's compute limit; and the fused
     kernels of cifar10/kernels, with the times of their check against
     TensorFlow's ops on this machine, which decide where each is used;
  1. the input pipeline alone (distorted training images/sec), the tutorial's
     per-image queue runners (16 threads) and this project's batched ones
     with 1, 2 and 4 threads, and with its distortions as TensorFlow ops
     instead of the fused kernel (cifar10/kernels/distort_kernel.cc), and the
     trainer's speed fed by each;
  2. the train step alone on a batch already in memory (compute-only
     examples/sec), with this project's LRN (kernels.lrn: the fused kernel of
     cifar10/kernels where it builds and its check chose it) and with
     tf.nn.lrn, in both precisions, with the LRN as TensorFlow ops and in
     XLA (each put in the same network with kernels.lrn_override), and the
     share of each kind of op in a profile;
  3. the full `cifar10_train.py` loop (examples/sec as it prints them), in
     float32 and mixed_bfloat16, both also with the LRN kernel off
     (CIFAR10_LRN_KERNEL=off) and the latter with the distortions kernel off
     (CIFAR10_DISTORT_KERNEL=off), each beside its train step alone;
  4. the same model and distortions in Keras `model.fit` on tf.data
     (scripts/cifar10_keras.py) and, if installed, PyTorch on the CPU
     (scripts/cifar10_torch.py), on the same data; 3 and 4 alternate for
     --rounds rounds;
  5. evaluation: seconds for the 10,000 test images with
     `cifar10_eval.py --run_once`, plain and with --eval_flip;
  6. resident memory of a `cifar10_train.py` run of --memory_minutes.
and prints a table with the ratios (docs/performance.md, Training speed,
shows the latest figures of each kind of machine), then the speed targets as
ratios paired within each round of parts 3 and 4 (a loop beside its step
alone, ours beside Keras, the float32 loop beside the compute limit), with
the median over the rounds, whether the median meets each target, and the
host's steal time per round: on a shared machine whose speed moves between
minutes, a ratio within one round is what can be compared. The targets
that compare mixed_bfloat16 with float32 or with Keras hold only where the
CPU has bfloat16 units; elsewhere the table gives their ratios without a
verdict.

  python scripts/benchmark_speed.py --loops_only --rounds=5 --steps=300

runs only parts 3, 3a and 4 and the targets, for more rounds in the same
time. The mixed_bfloat16 rows are measured only where the CPU has bfloat16
units (--bfloat16=on measures them anyway, emulated and slow).
Part 3a takes the loop apart in one process (the step on a constant batch,
on a batch in a variable, fed by the queue, and in the trainer's session
with its hooks and summaries), so what each adds is measured side by side.
"""
import argparse
import collections
import contextlib
import functools
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from unittest import mock

import bench_common  # First: it puts the repository on sys.path.
import numpy as np
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import cifar10_input
from cifar10 import kernels
from cifar10 import schedules
from cifar10 import training
from cifar10.kernels import build as kernel_build
from cifar10.kernels import lrn_ops
from tutorials_common import console

EVAL_LINE = re.compile(r'evaluated (\d+) examples in ([\d.]+) s')
PRECISION_LINE = re.compile(r'precision @ 1 = ([\d.]+)')

# Multiply-adds per image of the forward pass, layer by layer.
FORWARD_MACS = (24 * 24 * 64 * 5 * 5 * 3 +     # conv1
                12 * 12 * 64 * 5 * 5 * 64 +    # conv2
                2304 * 384 + 384 * 192 + 192 * 10)  # local3, local4, softmax
# A trained image costs the forward pass and two backward products per layer,
# less conv1's gradient with respect to the images, which nobody needs.
TRAIN_MACS = 3 * FORWARD_MACS - 24 * 24 * 64 * 5 * 5 * 3


def parse_args(argv):
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--data_dir', default=os.path.join(
      bench_common.SHARED_DATASETS, 'cifar10'),
                      help='Folder holding cifar-10-batches-bin/ (path).')
  parser.add_argument('--steps', type=int, default=400,
                      help='Training steps per measured run (steps).')
  parser.add_argument('--rounds', type=int, default=2,
                      help='Rounds of parts 3 and 4, alternating (count).')
  parser.add_argument('--memory_minutes', type=float, default=10,
                      help='Length of the memory run, part 6 (minutes; 0 '
                      'skips it).')
  parser.add_argument('--eval_repeats', type=int, default=3,
                      help='Evaluations of each kind; the fastest counts '
                      '(count).')
  parser.add_argument('--loops_only', action='store_true',
                      help='Run only parts 3, 3a and 4 and the targets (no '
                      'pipeline, compute-only, evaluation or memory parts; '
                      'switch).')
  parser.add_argument('--bfloat16', default='auto',
                      choices=['auto', 'on', 'off'],
                      help='Measure the mixed_bfloat16 rows: auto = only '
                      'where the CPU has bfloat16 units (avx512_bf16 or '
                      'amx_bf16 in /proc/cpuinfo); elsewhere bfloat16 is '
                      'emulated, much slower than float32 (choice).')
  parser.add_argument('--output', default=None,
                      help='Also write the figures to this JSON file (path).')
  return parser.parse_args(argv)


# ----------------------------------------------------------------------------
# 0. The machine.


def machine():
  return dict(bench_common.cpu(), tensorflow=tf.__version__)


def matmul_gflops(n=2048, repeats=10):
  """float32 matrix-multiply GFLOP/s of numpy and of TensorFlow."""
  a = np.random.rand(n, n).astype(np.float32)
  b = np.random.rand(n, n).astype(np.float32)
  a.dot(b)
  start = time.time()
  for _ in range(repeats):
    a.dot(b)
  numpy_rate = 2.0 * n ** 3 * repeats / (time.time() - start) / 1e9
  with tf.Graph().as_default():
    # Fed, so that no product can be folded into a constant and cached.
    x = tf.placeholder(tf.float32, [n, n])
    y = tf.constant(b)
    z = x
    for _ in range(repeats):
      z = tf.matmul(z, y) * 1e-3
    with tf.Session() as sess:
      sess.run(z, {x: a})
      start = time.time()
      sess.run(z, {x: a})
      tf_rate = 2.0 * n ** 3 * repeats / (time.time() - start) / 1e9
  return numpy_rate, tf_rate


# ----------------------------------------------------------------------------
# 1. and 2. In-process graphs.


def _train_graph(images, labels, precision='float32', batch_size=128,
                 lrn=None):
  """The tutorial's train op on images, in this precision, as
  cifar10_train.py builds it.

  lrn: None for the network's own LRN (kernels.lrn), else (function with
  tf.nn.lrn's signature, the dtype of its input and output or None for the
  activations'), put in its place with kernels.lrn_override. The loss is the
  graph's total_loss:0.
  """
  global_step = tf.train.get_or_create_global_step()
  with kernels.lrn_override(*lrn) if lrn else contextlib.nullcontext():
    loss = cifar10.loss(cifar10.logits(images, precision), labels)
  return cifar10.train(loss, global_step, cifar10.TrainSettings(
      schedule=schedules.Schedule('tutorial', batch_size),
      precision=precision))


def xla_lrn(x, depth_radius, bias, alpha, beta, name=None):
  """The LRN as TensorFlow ops (lrn_ops.band_lrn) in float32, compiled by
  XLA as one cluster with its custom gradient and the casts around it (the
  convolutions stay oneDNN's): the candidate for fusing the LRN's
  element-wise passes without a kernel of our own. Put in with
  lrn_override's dtype the activations' own (bfloat16 under mixed_bfloat16),
  so that the casts from and to bfloat16 fall inside the cluster."""
  with tf.xla.experimental.jit_scope(compile_ops=True,
                                     separate_compiled_gradients=True):
    y = lrn_ops.band_lrn(tf.cast(x, tf.float32), depth_radius, bias, alpha,
                         beta, name)
    return tf.cast(y, x.dtype)


# Asked once per dtype: each answer builds a graph.
@functools.lru_cache(maxsize=None)
def fused_lrn_reason(dtype):
  """None where the network's LRN in dtype is the fused kernel on this
  machine (kernels.fused_lrn_ops decides), else why it is TensorFlow's ops."""
  with tf.Graph().as_default():
    if kernels.fused_lrn_ops(tf.placeholder(dtype, [1, 1, 1, 64])) is not None:
      return None
  ops, record = kernels.library(kernels.LRN_SWITCH)
  if ops is None:
    return kernels.unavailable_reason(kernels.LRN_SWITCH)
  if not kernel_build.uses(record, 'lrn', dtype.name):
    return 'TensorFlow\'s ops measured faster in the kernels\' check'
  return 'a GPU is visible'


def bfloat16_lrn_text():
  """What the mixed_bfloat16 network's LRN is here, for the table."""
  reason = fused_lrn_reason(tf.bfloat16)
  return ('fused LRN kernel' if reason is None else
          'LRN as float32 ops: %s' % reason)


def kernels_in_use():
  """The fused kernels on this machine, for part 0 and the JSON:
  {'choices': their check's times and choices (build.choices_text; empty
  where there is no library), 'not_used': {switch: why that use has no
  kernel in this run}}."""
  status = {'choices': {}, 'not_used': {}}
  for switch in (kernels.DISTORT_SWITCH, kernels.LRN_SWITCH):
    ops, record = kernels.library(switch)
    if ops is None:
      status['not_used'][switch] = kernels.unavailable_reason(switch)
    else:
      status['choices'] = record.get('choices', {})
  return status


def print_kernels(status):
  """Part 0's lines on the fused kernels: what their check measured and
  chose, or why there are none."""
  if not status['choices']:
    print('Fused kernels (cifar10/kernels): none (%s); the LRN and the '
          'distortions run as TensorFlow ops.' %
          status['not_used'].get(kernels.LRN_SWITCH))
    return
  print('Fused kernels (cifar10/kernels), timed against TensorFlow\'s ops by '
        'their check on this machine:')
  print(kernel_build.choices_text(status))
  for switch, reason in status['not_used'].items():
    print('  not used in this run, %s: %s' % (
        'the LRN' if switch == kernels.LRN_SWITCH else 'the distortions',
        reason))


class QueueSession(object):
  """A session with the queue runners started, stopped cleanly on exit."""

  def __init__(self, graph):
    self.sess = tf.Session(graph=graph)
    with graph.as_default():
      self.sess.run([tf.global_variables_initializer(),
                     tf.local_variables_initializer()])
      self.coord = tf.train.Coordinator()
      self.threads = tf.train.start_queue_runners(self.sess, self.coord)

  def close(self):
    self.coord.request_stop()
    self.sess.close()  # Cancels the queues, so the threads end.
    self.coord.join(self.threads, stop_grace_period_secs=10)


def _timed_rate(run, steps, examples_per_step=128):
  start = time.time()
  for _ in range(steps):
    run()
  return steps * examples_per_step / (time.time() - start)


def per_image_inputs(data_dir, batch_size, threads):
  """The tutorial's pipeline: each queue-runner step reads and distorts one image."""
  filenames = cifar10_input.data_files(data_dir)
  min_queue_examples = cifar10_input.shuffle_queue_examples(
      cifar10_input.check_data_files(filenames))
  record = cifar10_input.read_cifar10(tf.train.string_input_producer(filenames))
  image = cifar10_input.distort_image(record.uint8image)
  images, labels = tf.train.shuffle_batch(
      [image, record.label], batch_size, num_threads=threads,
      capacity=min_queue_examples + 3 * batch_size,
      min_after_dequeue=min_queue_examples)
  return images, tf.reshape(labels, [batch_size])


def tensorflow_op_distorted_inputs(data_dir, batch_size, threads):
  """The batched pipeline with its distortions as TensorFlow ops, not the
  fused kernel of cifar10/kernels/distort_kernel.cc."""
  with mock.patch.dict(os.environ, {kernels.DISTORT_SWITCH: 'off'}):
    return cifar10_input.distorted_inputs(data_dir, batch_size, threads)


TENSORFLOW_OP_DISTORTIONS = 'batched, distortions as TensorFlow ops'
LRN_OFF_LOOP = 'cifar10_train.py --precision=mixed_bfloat16, LRN kernel off'
FLOAT32_LRN_OFF_LOOP = 'cifar10_train.py, LRN kernel off'
DISTORTIONS_OFF_LOOP = ('cifar10_train.py --precision=mixed_bfloat16, '
                        'distortions kernel off')
# The speed targets, each a ratio of two measurements taken next to each
# other in one round: (target, numerator, denominator, the least ratio that
# meets it or None, whether it holds only where the CPU has bfloat16 units:
# emulated, mixed_bfloat16 is not meant to beat float32 or Keras).
Target = collections.namedtuple(
    'Target', 'name numerator denominator least needs_bfloat16_units')
TARGETS = (
    Target('mixed_bfloat16 loop / its step alone >= 0.95',
           'cifar10_train.py --precision=mixed_bfloat16',
           'train step alone, mixed_bfloat16', 0.95, False),
    Target('mixed_bfloat16 loop / float32 loop >= 1.6',
           'cifar10_train.py --precision=mixed_bfloat16', 'cifar10_train.py',
           1.6, True),
    Target('mixed_bfloat16 loop / Keras mixed_bfloat16 >= 1.5',
           'cifar10_train.py --precision=mixed_bfloat16',
           'Keras model.fit, mixed_bfloat16', 1.5, True),
    # No target: float32 at 1.5x Keras would need the whole loop at about
    # the matmul peak (see the compute limit below).
    Target('float32 loop / Keras float32 (no target)', 'cifar10_train.py',
           'Keras model.fit', None, False),
    Target('float32 loop / its step alone (no target)', 'cifar10_train.py',
           'train step alone, float32', None, False),
    Target('float32 loop / the same with the LRN kernel off (no target)',
           'cifar10_train.py', FLOAT32_LRN_OFF_LOOP, None, False),
)
# The float32 loop beside the compute limit of part 0 (one measurement of
# the matmul peak, so each round's loop over the same limit).
LIMIT_FRACTION = Target(
    'float32 loop / float32 compute limit (no target)', 'cifar10_train.py',
    'compute limit', None, False)
# Each kernel-off loop: (what its ratio to the loop with it says, that loop).
KERNEL_OFF_LOOPS = {
    FLOAT32_LRN_OFF_LOOP: ('the kernel', 'cifar10_train.py'),
    LRN_OFF_LOOP: ('the kernel', 'cifar10_train.py --precision=mixed_bfloat16'),
    DISTORTIONS_OFF_LOOP: ('the distortions kernel',
                           'cifar10_train.py --precision=mixed_bfloat16')}


def pipeline_and_threads(data_dir, steps):
  """Part 1: images/sec of the pipeline alone, and of training, per setting."""
  rows = []
  for name, inputs_fn, threads in (
      ("tutorial's per-image queue runners", per_image_inputs, 16),
      ('batched', cifar10_input.distorted_inputs, 1),
      ('batched', cifar10_input.distorted_inputs, 2),
      ('batched', cifar10_input.distorted_inputs, 4),
      (TENSORFLOW_OP_DISTORTIONS, tensorflow_op_distorted_inputs,
       cifar10_input.NUM_PREPROCESS_THREADS)):
    inputs = functools.partial(inputs_fn, data_dir, 128, threads)
    row = {'name': name, 'threads': threads}
    graph = tf.Graph()
    with graph.as_default():
      images, labels = inputs()
      queue_size = [op for op in graph.get_operations()
                    if op.type == 'QueueSizeV2' and
                    'shuffle_batch' in op.name][0].outputs[0]
      # Filled: as many images as the pipeline holds before the first batch.
      min_queue_examples = [op for op in graph.get_operations()
                            if op.type == 'RandomShuffleQueueV2'][0].get_attr(
                                'min_after_dequeue')
    session = QueueSession(graph)
    try:
      start = time.time()
      while session.sess.run(queue_size) < min_queue_examples:
        if time.time() - start > 300:
          raise RuntimeError('The shuffling queue did not fill in 5 minutes.')
        time.sleep(0.05)
      row['fill_seconds'] = time.time() - start
      row['pipeline'] = _timed_rate(
          lambda: session.sess.run([images, labels]), steps)
    finally:
      session.close()
    graph = tf.Graph()
    with graph.as_default():
      images, labels = inputs()
      train_op = _train_graph(images, labels)
    session = QueueSession(graph)
    try:
      for _ in range(min(20, steps)):
        session.sess.run(train_op)
      row['training'] = _timed_rate(lambda: session.sess.run(train_op),
                                    steps // 2)
    finally:
      session.close()
    rows.append(row)
  return rows


LRN_KIND = 'LRN and its gradient'


def _lrn_casts(graph):
  """The names of the casts into and out of the LRNs (norm1, norm2):
  kernels.lrn computes a bfloat16 LRN in float32 between casts wherever the
  fused kernel does not read bfloat16 itself, so they are the LRN's cost."""
  def lrn(name):
    return name.startswith('norm')
  return {op.name for op in graph.get_operations() if op.type == 'Cast' and (
      any(lrn(t.op.name) for t in op.inputs) or
      any(lrn(c.name) for t in op.outputs for c in t.consumers()))}


def _category(node_name, lrn_casts=()):
  """The kind of work a node of the training graph does, by its layer;
  lrn_casts (_lrn_casts) and their gradients count as the LRN."""
  name = node_name.replace('gradients/', '')
  if name.split('_grad/')[0] in lrn_casts:
    return LRN_KIND
  for prefix, kind in (('conv', 'convolutions (with bias, ReLU)'),
                       ('norm', LRN_KIND),
                       ('pool', 'max-pooling'),
                       ('local', 'dense layers'),
                       ('softmax_linear', 'dense layers'),
                       ('cross_entropy', 'loss'),
                       ('total_loss', 'loss'),
                       ('GradientDescent', 'optimizer and moving averages'),
                       ('Momentum', 'optimizer and moving averages'),
                       ('ExponentialMovingAverage',
                        'optimizer and moving averages'),
                       ('avg', 'optimizer and moving averages')):
    if name.startswith(prefix):
      return kind
  return 'other'


def one_batch(data_dir, batch_size):
  """One distorted training batch, as numpy arrays."""
  graph = tf.Graph()
  with graph.as_default():
    batch = cifar10_input.distorted_inputs(data_dir, batch_size)
  session = QueueSession(graph)
  try:
    return session.sess.run(batch)
  finally:
    session.close()


def step_session(image_batch, label_batch, warmup_steps, **options):
  """A session and the train op on one batch held in memory, warmed up."""
  graph = tf.Graph()
  with graph.as_default():
    train_op = _train_graph(tf.constant(image_batch), tf.constant(label_batch),
                            batch_size=len(label_batch), **options)
    init = tf.global_variables_initializer()
  sess = tf.Session(graph=graph)
  sess.run(init)
  for _ in range(min(20, warmup_steps)):
    sess.run(train_op)
  return sess, train_op


def compute_only(data_dir, steps, rounds=3, batch_size=128, profile_steps=10,
                 bfloat16=True):
  """Part 2: the train step on one batch held in memory, and its profile;
  the mixed_bfloat16 variants only with bfloat16.

  Returns ({variant: examples/sec}, {precision: [(kind of op, share)]}).
  """
  image_batch, label_batch = one_batch(data_dir, batch_size)
  variants = collections.OrderedDict()
  # (name, precision, the LRN put in with kernels.lrn_override or None for
  # the network's own).
  candidates = [
      ('this project', 'float32', None),
      ('tf.nn.lrn', 'float32', (tf.nn.lrn, None)),
      ('mixed_bfloat16', 'mixed_bfloat16', None),
      # Without the fused kernel: float32 TensorFlow ops between casts.
      ('mixed_bfloat16, LRN as float32 ops', 'mixed_bfloat16',
       (lrn_ops.band_lrn, tf.float32)),
      ('mixed_bfloat16, LRN as bfloat16 ops', 'mixed_bfloat16',
       (lrn_ops.band_lrn, tf.bfloat16)),
      ('float32, LRN in XLA', 'float32', (xla_lrn, None)),
      ('mixed_bfloat16, LRN in XLA', 'mixed_bfloat16',
       (xla_lrn, tf.bfloat16))]
  # Where the float32 LRN is the fused kernel, also the same step with the
  # LRN as TensorFlow ops (elsewhere that is 'this project' itself).
  if fused_lrn_reason(tf.float32) is None:
    candidates.append(('float32, LRN as TensorFlow ops', 'float32',
                       (lrn_ops.band_lrn, None)))
  if not bfloat16:
    candidates = [candidate for candidate in candidates
                  if candidate[1] == 'float32']
  for name, precision, lrn in candidates:
    sess, train_op = step_session(image_batch, label_batch, steps,
                                  precision=precision, lrn=lrn)
    variants[name] = (sess, train_op, [])
  for _ in range(rounds):  # Alternate, so both see the same machine.
    for sess, train_op, rates in variants.values():
      rates.append(_timed_rate(lambda: sess.run(train_op),
                               max(1, steps // rounds), batch_size))

  # Profile this project's step, in float32 and in mixed_bfloat16.
  profiles = {}
  for name, precision in (('this project', 'float32'),
                          ('mixed_bfloat16', 'mixed_bfloat16')):
    if name not in variants:
      continue
    sess, train_op, _ = variants[name]
    lrn_casts = _lrn_casts(sess.graph)
    times = collections.Counter()
    for _ in range(profile_steps):
      metadata = tf.RunMetadata()
      sess.run(train_op, options=tf.RunOptions(
          trace_level=tf.RunOptions.FULL_TRACE), run_metadata=metadata)
      for device in metadata.step_stats.dev_stats:
        for node in device.node_stats:
          times[_category(node.node_name, lrn_casts)] += (
              node.all_end_rel_micros)
    total = float(sum(times.values()))
    profiles[precision] = [(kind, micros / total)
                           for kind, micros in times.most_common()]
  rates = {name: statistics.median(r) for name, (_, _, r) in variants.items()}
  for sess, _, _ in variants.values():
    sess.close()
  return rates, profiles


# What cifar10_train.py's loop adds to its step, one part at a time.
LOOP_PARTS = ('the step alone, on a constant batch',
              'the step on a batch held in a variable',
              'the step fed by the training queue',
              "the queue and the loop's session, hooks and summaries")


def loop_taken_apart(data_dir, train_dir, precision, rounds, windows=6,
                     window_steps=10, warmup_steps=20):
  """Part 3a: the loop built up from its step in one process, alternating.

  Each of LOOP_PARTS adds one thing to the one before: no constant folding
  of the batch's casts, then the input queue and its threads competing for
  the cores, then the MonitoredTrainingSession with the trainer's own hooks
  (training.loop_hooks) and summaries every 100 steps. Each runs
  `windows` windows of `window_steps` steps per round; returns {part:
  {'rate': median examples/sec, 'cpu_us': median CPU microseconds an
  example, all the process's threads}} over all windows, medians as the
  loop's log lines are (a window with a summary step counts once). The CPU
  time leaves out what the host's other guests steal, so on a shared
  machine it shows what a part costs where the wall-clock rate cannot.
  """
  batch = one_batch(data_dir, 128)
  parts = collections.OrderedDict()
  for part in LOOP_PARTS:
    graph = tf.Graph()
    with graph.as_default():
      if part == LOOP_PARTS[0]:
        images, labels = tf.constant(batch[0]), tf.constant(batch[1])
      elif part == LOOP_PARTS[1]:
        images = tf.Variable(batch[0], trainable=False)
        labels = tf.Variable(batch[1], trainable=False)
      else:
        with tf.device('/cpu:0'):
          images, labels = cifar10_input.distorted_inputs(data_dir, 128)
      train_op = _train_graph(images, labels, precision=precision)
      if part == LOOP_PARTS[3]:
        hooks = training.loop_hooks(graph.get_tensor_by_name('total_loss:0'),
                                    128, log_frequency=10 ** 9,
                                    last_step=10 ** 9)
        session = tf.train.MonitoredTrainingSession(
            checkpoint_dir=os.path.join(train_dir, 'taken_apart'),
            hooks=hooks, save_summaries_steps=100, log_step_count_steps=None,
            # Its checkpoint hook only looks at the clock between saves.
            save_checkpoint_secs=None)
        close = session.close
      else:
        queue = QueueSession(graph)
        session, close = queue.sess, queue.close
    for _ in range(warmup_steps):
      session.run(train_op)
    parts[part] = (session, train_op, close, [])
  try:
    for _ in range(rounds):
      for session, train_op, _, windows_seen in parts.values():
        for _ in range(windows):
          cpu_before = time.process_time()
          rate = _timed_rate(lambda: session.run(train_op), window_steps)
          windows_seen.append((rate, (time.process_time() - cpu_before) /
                               (window_steps * 128) * 1e6))
  finally:
    for _, _, close, _ in parts.values():
      close()
  # The median leaves out the windows with a summary step; a user's run
  # pays for them, so also the rate over all windows.
  return collections.OrderedDict(
      (part, dict(rate=statistics.median(r for r, _ in seen),
                  cpu_us=statistics.median(c for _, c in seen),
                  rate_all_steps=statistics.harmonic_mean(r for r, _ in seen)))
      for part, (_, _, _, seen) in parts.items())


# ----------------------------------------------------------------------------
# 3. to 6. Scripts as users run them.


def train_loop(data_dir, train_dir, steps, precision='float32', env=None):
  return bench_common.median_rate(bench_common.run(
      bench_common.command('cifar10/cifar10_train.py') +
      ['--data_dir', data_dir, '--train_dir', train_dir, '--fresh',
       '--max_steps', str(steps), '--save_checkpoint_secs', '100000',
       '--precision', precision], 1800, env=env))


def keras_fit(data_dir, steps, precision='float32'):
  return bench_common.median_rate(bench_common.run(
      bench_common.command('scripts/cifar10_keras.py') +
      ['--data_dir', data_dir, '--steps', str(steps),
       '--precision', precision], 1800))


def torch_cpu(data_dir, steps):
  return bench_common.median_rate(bench_common.run(
      bench_common.command('scripts/cifar10_torch.py') +
      ['--data_dir', data_dir, '--steps', str(steps)], 900))


def evaluation(data_dir, train_dir, eval_dir, flip, repeats):
  """Part 5: (seconds in the eval loop, seconds of the whole command, precision)."""
  test_images = cifar10_input.check_data_files(
      cifar10_input.data_files(data_dir, eval_data=True))
  results = []
  for _ in range(repeats):
    start = time.time()
    out = bench_common.run(bench_common.command('cifar10/cifar10_eval.py') +
               ['--data_dir', data_dir, '--checkpoint_dir', train_dir,
                '--eval_dir', eval_dir, '--run_once',
                '--num_examples', str(min(10000, test_images)),
                '--eval_flip=%s' % flip], 600)
    wall = time.time() - start
    count, seconds = EVAL_LINE.search(out).groups()
    if int(count) != min(10000, test_images):
      raise RuntimeError('Evaluated %s examples, not %d.' %
                         (count, min(10000, test_images)))
    results.append((float(seconds), wall,
                    float(PRECISION_LINE.search(out).group(1)), int(count)))
  return min(results)


def _status_kib(pid, field):
  try:
    with open('/proc/%d/status' % pid) as f:
      for line in f:
        if line.startswith(field + ':'):
          return int(line.split()[1])
  except (IOError, OSError):
    pass
  return None


def memory(data_dir, train_dir, minutes):
  """Part 6: resident memory of a training run, sampled every 5 seconds."""
  log_path = os.path.join(os.path.dirname(train_dir), 'memory_run.log')
  with open(log_path, 'w') as log:
    trainer = subprocess.Popen(
        bench_common.command('cifar10/cifar10_train.py') +
        ['--data_dir', data_dir, '--train_dir', train_dir, '--fresh',
         '--save_checkpoint_secs', '120'],
        stdout=log, stderr=subprocess.STDOUT, env=bench_common.ENV)
    start = time.time()
    samples = []  # (seconds, rss MiB)
    peak = 0
    try:
      while time.time() - start < minutes * 60:
        time.sleep(5)
        rss = _status_kib(trainer.pid, 'VmRSS')
        if rss is None or trainer.poll() is not None:
          raise RuntimeError('The trainer stopped early:\n' +
                             open(log_path).read()[-3000:])
        samples.append((time.time() - start, rss / 1024.0))
        peak = max(peak, _status_kib(trainer.pid, 'VmHWM') or 0)
    finally:
      trainer.kill()
      trainer.wait()
  # Minute 2 of a 10-minute run (or a fifth of a shorter one).
  at_2 = [rss for t, rss in samples if t >= min(120, minutes * 12)][0]
  late = samples[-1][1]
  with open(log_path) as log:
    rates = bench_common.rates(log.read())
  tenth = max(1, len(rates) // 10)

  def median(values):  # A short run on a busy machine may log no rate.
    return statistics.median(values) if values else float('nan')

  return dict(rss_at_2_min=at_2, rss_at_end=late, peak_rss=peak / 1024.0,
              growth=(late - at_2) / at_2, minutes=samples[-1][0] / 60,
              early_rate=median(rates[tenth:2 * tenth]),
              late_rate=median(rates[-tenth:]))


# ----------------------------------------------------------------------------


def main(argv=None):
  args = parse_args(argv)
  if not os.path.isdir(os.path.join(args.data_dir, cifar10_input.BATCHES_DIR)):
    print('No CIFAR-10 data at %s: pass --data_dir=<folder holding '
          '%s/>.' % (args.data_dir, cifar10_input.BATCHES_DIR))
    return 2
  console.quiet_tensorflow()
  tf.disable_eager_execution()
  tf.get_logger().setLevel('ERROR')  # The queue runners' deprecation notes.
  work = tempfile.mkdtemp(prefix='cifar10_benchmark_')
  train_dir = os.path.join(work, 'train')
  figures = {'machine': machine()}
  try:
    m = figures['machine']
    print('Machine: %s, %d cores (%s), TensorFlow %s' % (
        m['cpu'], m['cores'], m['vector'], m['tensorflow']))
    print(bf16_note(m))
    args.measure_bfloat16 = measures_bfloat16(args.bfloat16, m)
    if not args.measure_bfloat16:
      print('mixed_bfloat16 rows: not measured (--bfloat16=%s).' %
            args.bfloat16)
    numpy_peak, tf_peak = matmul_gflops()
    figures['matmul_gflops'] = {'numpy': numpy_peak, 'tensorflow': tf_peak}
    limit = max(numpy_peak, tf_peak) * 1e9 / (2 * TRAIN_MACS)
    print('float32 matmul peak: numpy %.0f GFLOP/s, TensorFlow %.0f GFLOP/s; '
          'the model costs %.1f MFLOP per image forward, %.1f per trained '
          'image: compute limit %.0f trained examples/sec, %.2f s for 10,000 '
          'test images' % (numpy_peak, tf_peak, 2 * FORWARD_MACS / 1e6,
                           2 * TRAIN_MACS / 1e6, limit,
                           10000 * 2 * FORWARD_MACS /
                           (max(numpy_peak, tf_peak) * 1e9)))
    figures['compute_limit'] = limit
    figures['kernels'] = kernels_in_use()
    print_kernels(figures['kernels'])
    if args.measure_bfloat16:
      figures['bfloat16_lrn'] = bfloat16_lrn_text()

    if not args.loops_only:
      pipeline_and_compute(args, figures)

    print('\n3./4. Full training loops, alternating, %d rounds of %d steps' %
          (args.rounds, args.steps))
    figures['loop_rounds'], figures['steal_percent'] = loops_in_rounds(
        args, train_dir)
    figures['loops'] = {name: statistics.mean(r)
                        for name, r in figures['loop_rounds'].items()}
    figures['targets'] = paired_ratios(figures['loop_rounds'], limit)
    figures['target_medians'] = target_medians(
        figures['targets'], bool(bf16_units(m)))

    print('\n3a. The loop taken apart in one process, alternating, %d rounds'
          % args.rounds)
    figures['loop_taken_apart'] = collections.OrderedDict(
        (precision, loop_taken_apart(args.data_dir, train_dir, precision,
                                     args.rounds))
        for precision in measured_precisions(args))
    print_loop_parts(figures['loop_taken_apart'])

    if not args.loops_only:
      evaluation_and_memory(args, figures, work, train_dir)
  finally:
    shutil.rmtree(work, ignore_errors=True)

  if args.loops_only:
    print('\n| measured (batch 128, mean of %d rounds) | examples/sec |' %
          args.rounds)
    print('| --- | ---: |')
    for name, rate in figures['loops'].items():
      print('| %s | %.0f |' % (name, rate))
  else:
    print_table(figures, limit)
  print_targets(figures['targets'], figures['steal_percent'],
                bool(bf16_units(figures['machine'])))
  if args.output:
    with open(args.output, 'w') as f:
      json.dump(figures, f, indent=2)
  return 0


def pipeline_and_compute(args, figures):
  """Parts 1 and 2: their lines printed, their figures kept in figures."""
  print('\n1. Input pipeline alone, and training fed by it')
  figures['pipeline'] = pipeline_and_threads(args.data_dir, args.steps)
  for row in figures['pipeline']:
    print('   %s, %d thread(s): pipeline %.0f images/sec (queue filled in '
          '%.1f s); training %.0f examples/sec' % (
              row['name'], row['threads'], row['pipeline'],
              row['fill_seconds'], row['training']))

  print('\n2. Train step alone on a batch in memory (compute only)')
  rates, profiles = compute_only(args.data_dir, args.steps,
                                 bfloat16=args.measure_bfloat16)
  figures['compute_only'] = rates
  figures['profile'] = profiles['float32']
  if args.measure_bfloat16:
    figures['profile_mixed_bfloat16'] = profiles['mixed_bfloat16']
  for name, rate in rates.items():
    print('   %s: %.0f examples/sec' % (name, rate))
  for name, profile in profiles.items():
    print('   Where the time goes, %s:' % name)
    for kind, share in profile:
      print('   %5.1f%%  %s' % (100 * share, kind))


def loops_in_rounds(args, train_dir):
  """Parts 3 and 4, alternating for args.rounds rounds.

  Each loop runs right after the measurement it is compared with (its step
  alone, or ours before Keras), so a pair sees the same minutes of a shared
  machine. Returns ({name: [examples/sec, one per round]}, [steal percent
  of each round, or None]).
  """
  # The steps alone again, between the loops: what each loop loses to its
  # input, hooks and logging.
  batch = one_batch(args.data_dir, 128)
  steps_alone = {
      precision: step_session(*batch, warmup_steps=args.steps,
                              precision=precision)
      for precision in measured_precisions(args)}

  def step_alone(precision):
    sess, train_op = steps_alone[precision]
    return _timed_rate(lambda: sess.run(train_op), args.steps)

  def loop(precision='float32', env=None):
    return lambda: train_loop(args.data_dir, train_dir, args.steps, precision,
                              env)

  loops = collections.OrderedDict(
      [('train step alone, float32', lambda: step_alone('float32')),
       ('cifar10_train.py', loop()),
       ('Keras model.fit', lambda: keras_fit(args.data_dir, args.steps)),
       (FLOAT32_LRN_OFF_LOOP, loop('float32', {kernels.LRN_SWITCH: 'off'})),
       ('train step alone, mixed_bfloat16',
        lambda: step_alone('mixed_bfloat16')),
       ('cifar10_train.py --precision=mixed_bfloat16', loop('mixed_bfloat16')),
       ('Keras model.fit, mixed_bfloat16',
        lambda: keras_fit(args.data_dir, args.steps, 'mixed_bfloat16')),
       (LRN_OFF_LOOP, loop('mixed_bfloat16', {kernels.LRN_SWITCH: 'off'})),
       (DISTORTIONS_OFF_LOOP,
        loop('mixed_bfloat16', {kernels.DISTORT_SWITCH: 'off'}))])
  if not args.measure_bfloat16:
    loops = collections.OrderedDict(
        (name, measure) for name, measure in loops.items()
        if 'bfloat16' not in name)
  if importlib.util.find_spec('torch'):
    loops['PyTorch (CPU)'] = lambda: torch_cpu(args.data_dir, args.steps)
  else:
    print('   PyTorch is not installed (pip install -e \'.[torch]\'): '
          'left out.')
  loop_rates = collections.OrderedDict((name, []) for name in loops)
  steal = []
  for number in range(args.rounds):
    before = bench_common.cpu_times()
    for name, measure in loops.items():
      loop_rates[name].append(measure())
      print('   %s: %.0f examples/sec' % (name, loop_rates[name][-1]))
    steal.append(bench_common.steal_percent(before, bench_common.cpu_times()))
    if steal[-1] is not None:
      print('   (round %d: %.1f%% of the CPU time stolen by other guests)' %
            (number + 1, steal[-1]))
  for sess, _ in steps_alone.values():
    sess.close()
  return loop_rates, steal


def evaluation_and_memory(args, figures, work, train_dir):
  """Parts 5 and 6, on the checkpoint the loops left in train_dir."""
  print('\n5. Evaluation of the test images (best of %d)' % args.eval_repeats)
  figures['eval'] = {}
  for flip in (False, True):
    seconds, wall, precision, count = evaluation(
        args.data_dir, train_dir, os.path.join(work, 'eval'), flip,
        args.eval_repeats)
    figures['eval']['flip' if flip else 'plain'] = dict(
        seconds=seconds, command_seconds=wall, images=count)
    print('   %s: %.2f s in the evaluation loop, %.1f s for the whole '
          'command (precision %.3f after %d steps)' % (
              '--eval_flip' if flip else 'plain', seconds, wall, precision,
              args.steps))

  if args.memory_minutes > 0:
    print('\n6. Memory of a %.0f-minute cifar10_train.py run' %
          args.memory_minutes)
    figures['memory'] = memory(args.data_dir, os.path.join(work, 'memory'),
                               args.memory_minutes)
    mem = figures['memory']
    print('   resident %.0f MiB at minute 2, %.0f MiB at minute %.1f '
          '(%+.1f%%), peak %.0f MiB; examples/sec %.0f early, %.0f late' % (
              mem['rss_at_2_min'], mem['rss_at_end'], mem['minutes'],
              100 * mem['growth'], mem['peak_rss'], mem['early_rate'],
              mem['late_rate']))


def print_loop_parts(taken_apart):
  """Each part of the loop beside the step alone, per precision."""
  for precision, parts in taken_apart.items():
    alone = parts[LOOP_PARTS[0]]
    for part, figures in parts.items():
      print('   %s, %s: %.0f examples/sec, %.0f CPU us an example%s%s' % (
          precision, part, figures['rate'], figures['cpu_us'],
          '' if part == LOOP_PARTS[0] else
          '; %s the step alone, CPU time %+.1f%%' % (
              _below(figures['rate'], alone['rate']),
              100 * (figures['cpu_us'] / alone['cpu_us'] - 1)),
          '' if part != LOOP_PARTS[-1] else
          '; all steps, summary steps included: %.0f examples/sec, %s the '
          'step alone' % (figures['rate_all_steps'],
                          _below(figures['rate_all_steps'], alone['rate']))))


def paired_ratios(loop_rounds, limit=None):
  """{target: [its ratio in each round]}, for the TARGETS measured, and
  with limit (examples/sec) the float32 loop's fraction of it."""
  targets = collections.OrderedDict(
      (target.name, [a / b for a, b in zip(loop_rounds[target.numerator],
                                            loop_rounds[target.denominator])])
      for target in TARGETS
      if target.numerator in loop_rounds and target.denominator in loop_rounds)
  if limit and LIMIT_FRACTION.numerator in loop_rounds:
    targets[LIMIT_FRACTION.name] = [
        rate / limit for rate in loop_rounds[LIMIT_FRACTION.numerator]]
  return targets


def target_medians(targets, bfloat16_units=True):
  """{target: {'median': of its ratios over the rounds, 'least': the ratio
  that meets it (None: no target), 'met': whether the median does (None: no
  target, or one for bfloat16 units on a CPU without them)}}."""
  known = {target.name: target for target in TARGETS + (LIMIT_FRACTION,)}
  medians = collections.OrderedDict()
  for name, ratios in targets.items():
    target = known[name]
    median = statistics.median(ratios)
    applies = target.least is not None and (
        bfloat16_units or not target.needs_bfloat16_units)
    medians[name] = dict(median=median, least=target.least,
                         met=median >= target.least if applies else None)
  return medians


def print_targets(targets, steal, bfloat16_units=True):
  """The targets' ratios round by round, their median and whether it meets
  the target, and how many rounds met each."""
  medians = target_medians(targets, bfloat16_units)
  print('\nTargets, each ratio taken within one round (host steal per round: '
        '%s)' % ', '.join('?' if s is None else '%.1f%%' % s for s in steal))
  print('| target | per round | median | met | median meets it |')
  print('| --- | --- | ---: | --- | --- |')
  for name, ratios in targets.items():
    least, met = medians[name]['least'], medians[name]['met']
    rounds = ('' if least is None else '%d of %d rounds' % (
        sum(r >= least for r in ratios), len(ratios)))
    if least is None:
      verdict = ''
    elif met is None:
      verdict = 'not judged: no bfloat16 units'
    else:
      verdict = 'yes' if met else 'no'
    print('| %s | %s | %.2f | %s | %s |' % (
        name, ', '.join('%.2f' % r for r in ratios),
        medians[name]['median'], rounds, verdict))


def bf16_units(machine_figures):
  """The CPU's bfloat16 units, as /proc/cpuinfo names them."""
  return [f for f in ('avx512_bf16', 'amx_bf16')
          if f in machine_figures['vector'].split()]


def measures_bfloat16(choice, machine_figures):
  """--bfloat16's answer on this machine: auto measures where units exist."""
  if choice == 'auto':
    return bool(bf16_units(machine_figures))
  return choice == 'on'


def measured_precisions(args):
  """The precisions this run measures, float32 first."""
  return ('float32', 'mixed_bfloat16') if args.measure_bfloat16 else (
      'float32',)


def bf16_note(machine_figures):
  """What to expect of bfloat16 on this CPU, from its features."""
  units = bf16_units(machine_figures)
  if units:
    return 'bfloat16 units: %s.' % ', '.join(units)
  return ('bfloat16 units: none (no avx512_bf16 or amx_bf16 in '
          '/proc/cpuinfo): bfloat16 arithmetic is emulated here and expected '
          'to be slower than float32; that is not a failure.')


def _below(rate, reference):
  """'4.0% below' or, where noise puts it ahead, '2.0% above'."""
  share = 1 - rate / reference
  return '%.1f%% %s' % (100 * abs(share), 'below' if share >= 0 else 'above')


def print_table(figures, limit):
  loops = figures['loops']
  ours = loops['cifar10_train.py']
  compute = figures['compute_only']['this project']
  chosen = [r for r in figures['pipeline'] if r['name'] == 'batched' and
            r['threads'] == cifar10_input.NUM_PREPROCESS_THREADS][0]
  tutorial = figures['pipeline'][0]
  tensorflow_ops = [r for r in figures['pipeline']
                    if r['name'] == TENSORFLOW_OP_DISTORTIONS]
  print('\n%s' % bf16_note(figures['machine']))
  print('\n| measured (batch 128) | figure | ratio |')
  print('| --- | ---: | ---: |')
  print('| compute limit at the matmul peak | %.0f examples/sec | |' % limit)
  print('| train step alone, this LRN | %.0f examples/sec | %.2f of the limit |'
        % (compute, compute / limit))
  print('| train step alone, tf.nn.lrn | %.0f examples/sec | %.2fx slower |' %
        (figures['compute_only']['tf.nn.lrn'],
         compute / figures['compute_only']['tf.nn.lrn']))
  for row in [tutorial, chosen] + tensorflow_ops:
    print('| input pipeline alone, %s, %d threads | %.0f images/sec | costs '
          '%.1f%% of a compute step |' % (row['name'], row['threads'],
                                         row['pipeline'],
                                         100 * compute / row['pipeline']))
  print('| training fed by the batched pipeline / by the per-image one | %.0f / '
        '%.0f examples/sec | %.2fx |' % (chosen['training'],
                                        tutorial['training'],
                                        chosen['training'] /
                                        tutorial['training']))
  print('| cifar10_train.py loop | %.0f examples/sec | %s its step alone '
        '(%.0f examples/sec beside it) |' % (
            ours, _below(ours, loops['train step alone, float32']),
            loops['train step alone, float32']))
  compute_bf16 = figures['compute_only'].get('mixed_bfloat16')
  if compute_bf16:
    print('| train step alone, mixed_bfloat16 (%s) | %.0f examples/sec | '
          '%.2fx float32 |' % (figures.get('bfloat16_lrn', 'fused LRN kernel'),
                               compute_bf16, compute_bf16 / compute))
  for name, reference, label in (
      ('mixed_bfloat16, LRN as float32 ops', compute_bf16, 'mixed_bfloat16'),
      ('mixed_bfloat16, LRN as bfloat16 ops', compute_bf16, 'mixed_bfloat16'),
      ('float32, LRN as TensorFlow ops', compute, 'this LRN'),
      ('float32, LRN in XLA', compute, 'this LRN'),
      ('mixed_bfloat16, LRN in XLA', compute_bf16, 'mixed_bfloat16')):
    if name in figures['compute_only']:
      rate = figures['compute_only'][name]
      print('| train step alone, %s | %.0f examples/sec | %.2fx %s |' %
            (name, rate, rate / reference, label))
  keras_bf16 = loops.get('Keras model.fit, mixed_bfloat16')
  for name, rate in loops.items():
    if name == 'cifar10_train.py --precision=mixed_bfloat16':
      alone = loops['train step alone, mixed_bfloat16']
      print('| %s | %.0f examples/sec | %.2fx the float32 loop; %.2fx Keras '
            'mixed_bfloat16; %s its step alone (%.0f examples/sec beside '
            'it) |' % (name, rate, rate / ours, rate / keras_bf16,
                       _below(rate, alone), alone))
    elif name in KERNEL_OFF_LOOPS:
      kernel, loop_with_it = KERNEL_OFF_LOOPS[name]
      print('| %s | %.0f examples/sec | %s makes the loop %.2fx faster |' % (
          name, rate, kernel, loops[loop_with_it] / rate))
    elif name == 'Keras model.fit, mixed_bfloat16':
      print('| %s | %.0f examples/sec | cifar10_train.py mixed_bfloat16 is '
            '%.2fx |' % (name, rate,
                         loops['cifar10_train.py --precision=mixed_bfloat16'] /
                         rate))
    elif name != 'cifar10_train.py' and not name.startswith('train step'):
      print('| %s | %.0f examples/sec | cifar10_train.py is %.2fx |' %
            (name, rate, ours / rate))
  for kind, label in (('plain', 'cifar10_eval.py --run_once'),
                      ('flip', 'cifar10_eval.py --run_once --eval_flip')):
    e = figures['eval'][kind]
    print('| %s, %d images | %.2f s (%.1f s with start-up) | |' % (
        label, e['images'], e['seconds'], e['command_seconds']))
  if 'memory' in figures:
    mem = figures['memory']
    print('| resident memory, minute 2 -> %.0f | %.0f -> %.0f MiB (peak %.0f) '
          '| %+.1f%% |' % (mem['minutes'], mem['rss_at_2_min'],
                          mem['rss_at_end'], mem['peak_rss'],
                          100 * mem['growth']))


if __name__ == '__main__':
  sys.exit(main())
