"""--precision: mixed bfloat16 and float16 numerics, loss scaling, checkpoints."""
import os
import shutil

from absl import flags
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import cifar10_eval
from cifar10 import cifar10_flags
from cifar10 import precision as precision_lib
from cifar10 import schedules

TRAIN = os.path.join('cifar10', 'cifar10_train.py')
EVAL = os.path.join('cifar10', 'cifar10_eval.py')
BATCH = 16


# float16 convolutions have no fast CPU kernel (seconds a step at BATCH): the
# loss-scaling tests train on batches of 2.
FLOAT16_BATCH = 2


def _batch(seed=0, batch=BATCH):
  rng = np.random.RandomState(seed)
  return (rng.randn(batch, 24, 24, 3).astype(np.float32),
          (np.arange(batch) % 10).astype(np.int32))


def _one_step_graph(precision, batch=BATCH):
  """A graph training the model one step on fed images, and its parts."""
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(7)
    global_step = tf.train.get_or_create_global_step()
    images = tf.placeholder(tf.float32, [batch, 24, 24, 3])
    labels = tf.placeholder(tf.int32, [batch])
    loss = cifar10.loss(cifar10.logits(images, precision), labels)
    train_op = cifar10.train(loss, global_step, cifar10.TrainSettings(
        schedule=schedules.Schedule('tutorial', batch), precision=precision))
    init = [tf.global_variables_initializer(), tf.local_variables_initializer()]
  return graph, dict(images=images, labels=labels, loss=loss,
                     train_op=train_op, init=init, global_step=global_step)


def _train_one_step(precision, initial_values=None):
  """(loss, variable values after one step) from the same starting values."""
  graph, parts = _one_step_graph(precision)
  images, labels = _batch()
  feed = {parts['images']: images, parts['labels']: labels}
  with graph.as_default(), tf.Session(graph=graph) as sess:
    sess.run(parts['init'])
    variables = tf.trainable_variables()
    if initial_values is not None:
      for var in variables:
        var.load(initial_values[var.op.name], sess)  # Same start.
    before = {v.op.name: sess.run(v) for v in variables}
    loss = sess.run(parts['loss'], feed)
    sess.run(parts['train_op'], feed)
    after = {v.op.name: sess.run(v) for v in variables}
    dtypes = {v.op.name: v.dtype.base_dtype for v in tf.global_variables()}
  return loss, before, after, dtypes


def test_a_mixed_bfloat16_step_matches_the_float32_step():
  loss32, start, after32, _ = _train_one_step('float32')
  loss16, _, after16, dtypes = _train_one_step('mixed_bfloat16', start)
  # bfloat16 keeps 8 bits of mantissa: about 2-3 significant digits.
  assert loss16 == pytest.approx(loss32, rel=2e-2)
  assert all(dtype == tf.float32 for name, dtype in dtypes.items()
             if name != 'global_step'), dtypes
  for name, value in after32.items():
    assert after16[name].dtype == np.float32
    update32 = (value - start[name]).ravel()
    update16 = (after16[name] - start[name]).ravel()
    # The same step, to bfloat16's precision: at initialisation the lower
    # layers' gradients are small sums of large terms of both signs, so the
    # rounding of the activations moves them by some percent (measured:
    # cosines 0.98-0.9999), but never turns them elsewhere.
    cosine = update16.dot(update32) / (np.linalg.norm(update16) *
                                       np.linalg.norm(update32))
    assert cosine > 0.95, (name, cosine)
    assert np.linalg.norm(update16) == pytest.approx(
        np.linalg.norm(update32), rel=0.1), name


def _loss_scale(sess):
  scale = [v for v in tf.local_variables() if v.op.name == 'loss_scaling/scale']
  return sess.run(scale[0])


def test_float16_loss_scaling_skips_a_step_with_inf_gradients_and_lowers_the_scale():
  graph, parts = _one_step_graph('mixed_float16', FLOAT16_BATCH)
  images, labels = _batch(batch=FLOAT16_BATCH)
  with graph.as_default(), tf.Session(graph=graph) as sess:
    sess.run(parts['init'])
    assert _loss_scale(sess) == precision_lib.INITIAL_LOSS_SCALE
    weights = [v for v in tf.global_variables()
               if v.op.name == 'conv1/weights'][0]
    finite = {parts['images']: images, parts['labels']: labels}
    sess.run(parts['train_op'], finite)
    assert _loss_scale(sess) == precision_lib.INITIAL_LOSS_SCALE
    before = sess.run(weights)
    poisoned = images.copy()
    poisoned[0, 0, 0, 0] = np.inf
    sess.run(parts['train_op'], {parts['images']: poisoned,
                                 parts['labels']: labels})
    np.testing.assert_array_equal(sess.run(weights), before)
    assert _loss_scale(sess) == precision_lib.INITIAL_LOSS_SCALE / 2
    assert sess.run(parts['global_step']) == 2
    sess.run(parts['train_op'], finite)
    assert not np.array_equal(sess.run(weights), before)
    assert sess.run(parts['global_step']) == 3


def test_float16_summaries_survive_a_step_whose_gradients_overflow(
    monkeypatch):
  # A scale this large makes every backward pass overflow float16, with a
  # finite forward pass: the step is skipped, and its summaries (gradient
  # histograms included) are written rather than stopping the run.
  monkeypatch.setattr(precision_lib, 'INITIAL_LOSS_SCALE', 2.0 ** 60)
  graph, parts = _one_step_graph('mixed_float16', FLOAT16_BATCH)
  images, labels = _batch(batch=FLOAT16_BATCH)
  with graph.as_default(), tf.Session(graph=graph) as sess:
    summaries = tf.summary.merge_all()
    sess.run(parts['init'])
    weights = [v for v in tf.global_variables()
               if v.op.name == 'conv1/weights'][0]
    before = sess.run(weights)
    _, serialized = sess.run([parts['train_op'], summaries],
                             {parts['images']: images,
                              parts['labels']: labels})
    np.testing.assert_array_equal(sess.run(weights), before)
    assert _loss_scale(sess) == 2.0 ** 59
  histograms = {value.tag: value.histo
                for value in tf.Summary.FromString(serialized).value
                if value.HasField('histo')}
  gradients = histograms['conv1/weights/gradients']
  assert np.isfinite([gradients.min, gradients.max, gradients.sum]).all()
  assert histograms['conv1/weights'].num == before.size


def test_float16_loss_scale_grows_after_enough_finite_steps(monkeypatch):
  monkeypatch.setattr(precision_lib, 'LOSS_SCALE_GROWTH_STEPS', 2)
  # Low enough that no gradient of these steps overflows float16 on the way.
  monkeypatch.setattr(precision_lib, 'INITIAL_LOSS_SCALE', 2.0 ** 6)
  graph, parts = _one_step_graph('mixed_float16', FLOAT16_BATCH)
  images, labels = _batch(batch=FLOAT16_BATCH)
  feed = {parts['images']: images, parts['labels']: labels}
  with graph.as_default(), tf.Session(graph=graph) as sess:
    sess.run(parts['init'])
    scales = []
    for _ in range(4):
      sess.run(parts['train_op'], feed)
      scales.append(_loss_scale(sess))
  start = precision_lib.INITIAL_LOSS_SCALE
  assert scales == [start, 2 * start, 2 * start, 4 * start]


def test_checkpoints_are_the_same_whatever_the_precision():
  """Same variables, names, dtypes and shapes: each restores the others."""
  saved = {}
  for precision in precision_lib.PRECISIONS:
    graph, _ = _one_step_graph(precision)
    with graph.as_default():
      saved[precision] = sorted(
          (v.op.name, v.dtype.base_dtype.name, tuple(v.shape.as_list()))
          for v in tf.global_variables())
  assert saved['mixed_bfloat16'] == saved['float32']
  assert saved['mixed_float16'] == saved['float32']


def test_training_resumes_across_precisions_and_eval_reads_each(
    cifar_trained, tmp_path, run_in_process):
  # The trained run is float32; mixed_bfloat16 resumes it, mixed_float16
  # resumes that, and evaluation in mixed_bfloat16 reads the last.
  train_dir = str(tmp_path / 'train')
  shutil.copytree(str(cifar_trained['train_dir']), train_dir)
  # The trained run's kind of schedule (momentum), ending past the steps
  # here.
  common = ['--data_dir', cifar_trained['data_dir'], '--train_dir', train_dir,
            '--batch_size', str(FLOAT16_BATCH), '--log_frequency', '2',
            '--schedule', 'fast', '--fast_epochs', '1']
  trained = cifar_trained['steps']
  for precision, steps in (('mixed_bfloat16', trained + 2),
                           ('mixed_float16', trained + 4)):
    # In this process: two trainer start-ups less.
    result = run_in_process('cifar10.cifar10_train', [
        '--max_steps', str(steps), '--precision', precision] + common)
    assert result.returncode == 0, result.stderr
    assert 'at step %d' % (steps - 2) in result.stdout
    assert tf.train.latest_checkpoint(train_dir).endswith('-%d' % steps)
    # Where TensorBoard finds the summaries, said once at start.
    assert result.stdout.count('`tensorboard --logdir=%s`' % train_dir) == 1
  evaluator = cifar10_eval.Evaluator('test', cifar_trained['data_dir'], 40, 40,
                                     precision='mixed_bfloat16')
  precision, step = evaluator.evaluate(tf.train.latest_checkpoint(train_dir))
  assert step == trained + 4 and 0 <= precision <= 1
  # cifar10_eval says where its summaries go once at start too.
  eval_dir = str(cifar_trained['eval_dir'])
  assert cifar_trained['evaluation'].stdout.count(
      '`tensorboard --logdir=%s`' % eval_dir) == 1


def test_use_fp16_and_a_mixed_precision_exclude_each_other():
  # The validator, in process; tests/test_commands.py shows that a flag
  # error is one `cifar10_train: error:` line.
  flag_values = flags.FlagValues()
  flags.DEFINE_boolean('use_fp16', False, 'fp16', flag_values=flag_values)
  cifar10_flags.define_precision_flag(flag_values)
  flag_values(['cifar10_train', '--use_fp16', '--precision', 'float32'])
  flag_values.unparse_flags()
  with pytest.raises(flags.IllegalFlagValueError, match='exclude each other'):
    flag_values(['cifar10_train', '--use_fp16', '--precision',
                 'mixed_float16'])


def test_mixed_precision_keeps_the_weight_decay_on_the_float32_weights():
  """The variables are float32 and read cast to bfloat16 by one custom
  getter; the weight decay is of the stored weights, with no cast between."""
  with tf.Graph().as_default() as graph:
    cifar10.logits(tf.zeros([2, 24, 24, 3]), 'mixed_bfloat16')
    assert all(v.dtype.base_dtype == tf.float32
               for v in tf.global_variables())
    conv = graph.get_operation_by_name('conv1/Conv2D')
    assert conv.inputs[1].dtype == tf.bfloat16
    for layer in ('local3', 'local4'):
      l2 = graph.get_operation_by_name('%s/weight_loss' % layer).inputs[0].op
      assert l2.type == 'L2Loss'
      assert l2.inputs[0].dtype == tf.float32
      assert l2.inputs[0].op.type != 'Cast'
