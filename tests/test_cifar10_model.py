"""The CIFAR-10 network: shapes, variable names, parameter count, the losses."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import kernels
from cifar10.kernels import lrn_ops
from cifar10 import schedules
import cifar_fixtures
import suite_helpers

EXPECTED_VARIABLES = {
    'conv1/weights': [5, 5, 3, 64], 'conv1/biases': [64],
    'conv2/weights': [5, 5, 64, 64], 'conv2/biases': [64],
    'local3/weights': [2304, 384], 'local3/biases': [384],
    'local4/weights': [384, 192], 'local4/biases': [192],
    'softmax_linear/weights': [192, 10], 'softmax_linear/biases': [10],
}


def test_inference_shapes_names_and_parameter_count():
  with tf.Graph().as_default():
    logits = cifar10.inference(tf.zeros([7, 24, 24, 3]))
    assert logits.shape.as_list() == [7, 10]
    shapes = {v.op.name: v.shape.as_list() for v in tf.trainable_variables()}
    assert shapes == EXPECTED_VARIABLES
    assert sum(np.prod(s) for s in shapes.values()) == 1068298
    # Weight decay only on local3 and local4, as the tutorial.
    decays = [op.op.name for op in tf.get_collection('losses')]
    assert decays == ['local3/weight_loss', 'local4/weight_loss']
    # local4 is the 192-wide feature vector other tools export.
    local4 = tf.get_default_graph().get_tensor_by_name('local4/local4:0')
    assert local4.shape.as_list() == [7, 192]


def test_inference_accepts_any_batch_size():
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [None, 24, 24, 3])
    logits = cifar10.inference(images)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      out = sess.run(logits, {images: np.zeros([3, 24, 24, 3])})
  assert out.shape == (3, 10)


def test_loss_is_cross_entropy_plus_weight_decay():
  with tf.Graph().as_default():
    logits = cifar10.inference(tf.random.normal([4, 24, 24, 3], seed=1))
    labels = tf.constant([0, 1, 2, 3])
    total = cifar10.loss(logits, labels)
    xent = tf.get_default_graph().get_tensor_by_name('cross_entropy:0')
    decay = tf.add_n([0.004 * tf.nn.l2_loss(v) for v in tf.trainable_variables()
                      if v.op.name in ('local3/weights', 'local4/weights')])
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      total_v, xent_v, decay_v = sess.run([total, xent, decay])
  # Nearly uniform logits at initialisation: cross entropy ~ ln 10.
  assert abs(xent_v - np.log(10)) < 0.1
  np.testing.assert_allclose(total_v, xent_v + decay_v, rtol=1e-5)


def test_train_op_updates_weights_and_moving_averages():
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    logits = cifar10.inference(tf.random.normal([8, 24, 24, 3], seed=2))
    total = cifar10.loss(logits, tf.constant([1] * 8))
    train_op = cifar10.train(total, global_step, cifar10.TrainSettings(
        schedule=schedules.Schedule('tutorial', 8)))
    weights = [v for v in tf.trainable_variables()
               if v.op.name == 'local4/weights'][0]
    shadow = [v for v in tf.global_variables()
              if v.op.name == 'local4/weights/ExponentialMovingAverage'][0]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      before = sess.run(weights)
      sess.run(train_op)
      after, shadow_v, step = sess.run([weights, shadow, global_step])
  assert step == 1
  assert not np.allclose(before, after)
  # The decay at step 1 is min(0.9999, 2/11): the shadow moves most of the way.
  np.testing.assert_allclose(
      shadow_v, 2 / 11. * before + 9 / 11. * after, rtol=1e-4, atol=1e-6)


def test_use_fp16_builds_float16_variables_and_float32_loss():
  with tf.Graph().as_default():
    logits = cifar10.logits(tf.zeros([2, 24, 24, 3]), 'float16')
    total = cifar10.loss(logits, tf.constant([0, 1]))
    assert logits.dtype == tf.float16
    assert total.dtype == tf.float32
    assert all(v.dtype.base_dtype == tf.float16
               for v in tf.trainable_variables())


@pytest.mark.parametrize('shape, depth_radius, beta', [
    ((4, 12, 12, 64), 4, 0.75),   # norm1, the tutorial's settings
    ((2, 24, 24, 64), 4, 0.75),   # norm2
    ((3, 5, 5, 7), 2, 0.5),       # another radius and the pow branch
])
@pytest.mark.parametrize('lrn', [kernels.lrn, lrn_ops.band_lrn])
def test_fast_lrn_matches_tf_nn_lrn_and_its_gradient(shape, depth_radius, beta,
                                                     lrn):
  rng = np.random.RandomState(3)
  # Large inputs make the normalisation matter: norm ranges over ~1-10.
  x_value = (rng.standard_normal(shape) * 30).astype(np.float32)
  upstream = rng.standard_normal(shape).astype(np.float32)
  with tf.Graph().as_default():
    x = tf.constant(x_value)
    kwargs = dict(bias=1.0, alpha=0.001 / 9.0, beta=beta)
    reference = tf.nn.lrn(x, depth_radius, **kwargs)
    fast = lrn(x, depth_radius, **kwargs)
    grad_reference = tf.gradients(reference, x, upstream)[0]
    grad_fast = tf.gradients(fast, x, upstream)[0]
    with tf.Session() as sess:
      values = sess.run([reference, fast, grad_reference, grad_fast])
  np.testing.assert_allclose(values[1], values[0], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(values[3], values[2], rtol=1e-4, atol=1e-5)
  assert np.abs(values[2] - upstream).max() > 0.1  # The gradient is not trivial.


def test_label_smoothing_is_cross_entropy_against_smoothed_targets():
  logits_value = np.random.RandomState(4).standard_normal([5, 10]) * 3
  labels_value = np.array([0, 3, 9, 3, 1])
  with tf.Graph().as_default():
    cifar10.loss(tf.constant(logits_value, tf.float32),
                 tf.constant(labels_value), label_smoothing=0.1)
    xent = tf.get_default_graph().get_tensor_by_name('cross_entropy:0')
    with tf.Session() as sess:
      xent_v = sess.run(xent)
  log_probs = logits_value - np.log(np.exp(logits_value).sum(1, keepdims=True))
  targets = np.full([5, 10], 0.01)
  targets[np.arange(5), labels_value] += 0.9
  np.testing.assert_allclose(xent_v, -(targets * log_probs).sum(1).mean(),
                             rtol=1e-5)


def _learning_rates(schedule, steps):
  with tf.Graph().as_default():
    step = tf.placeholder(tf.int64, [])
    lr = schedule.learning_rate(step)
    with tf.Session() as sess:
      return [sess.run(lr, {step: s}) for s in steps]


def test_fast_schedule_warms_up_then_decays_to_zero_at_its_last_step():
  schedule = schedules.Schedule('fast', examples_per_step=128, fast_epochs=10)
  assert schedule.last_step == 3907  # ceil(10 * 50000 / 128)
  warmup = int(0.15 * 3907)
  rates = _learning_rates(schedule, [0, warmup // 2, warmup, 2000, 3907, 5000])
  np.testing.assert_allclose(rates, [0, schedules.FAST_PEAK_LEARNING_RATE / 2,
                                     schedules.FAST_PEAK_LEARNING_RATE,
                                     rates[3], 0, 0], atol=2e-5)
  assert 0 < rates[3] < schedules.FAST_PEAK_LEARNING_RATE
  assert schedule.label_smoothing == schedules.FAST_LABEL_SMOOTHING
  assert schedule.moving_average_decay == schedules.FAST_MOVING_AVERAGE_DECAY
  # A step holds twice the images with two towers: half the steps.
  assert schedules.Schedule('fast', 256, 10).last_step == 1954


def test_fast50_schedule_is_fast_retuned_for_50_epochs():
  schedule = schedules.Schedule('fast50', examples_per_step=128)
  assert schedule.last_step == 19532  # ceil(50 * 50000 / 128)
  warmup = int(schedules.FAST50_WARMUP_FRACTION * 19532)
  rates = _learning_rates(schedule, [0, warmup, 19532])
  np.testing.assert_allclose(
      rates, [0, schedules.FAST50_PEAK_LEARNING_RATE, 0], atol=5e-5)
  assert not schedule.color_jitter
  assert schedules.Schedule('fast').color_jitter
  assert schedules.Schedule('tutorial').color_jitter
  # The same optimizer, loss and averages as fast: each resumes the other.
  assert schedule.label_smoothing == schedules.FAST_LABEL_SMOOTHING
  assert schedule.moving_average_decay == schedules.FAST_MOVING_AVERAGE_DECAY
  assert schedules.Schedule('fast50', 128, 10).last_step == 3907
  assert schedules.Schedule('fast').last_step == 39063  # 100 epochs


def test_fast25_schedule_is_fast50_over_25_epochs_with_central_crops():
  schedule = schedules.Schedule('fast25', examples_per_step=128)
  assert schedule.last_step == 9766  # ceil(25 * 50000 / 128)
  fast50 = schedules.Schedule('fast50', examples_per_step=128)
  for name in ('peak_learning_rate', 'warmup_fraction', 'color_jitter',
               'label_smoothing', 'moving_average_decay'):
    assert getattr(schedule, name) == getattr(fast50, name), name
  assert schedule.crop_shift == schedules.FAST25_CROP_SHIFT == 2
  assert fast50.crop_shift == schedules.Schedule('tutorial').crop_shift == 4
  warmup = int(schedules.FAST50_WARMUP_FRACTION * 9766)
  np.testing.assert_allclose(
      _learning_rates(schedule, [0, warmup, 9766]),
      [0, schedules.FAST50_PEAK_LEARNING_RATE, 0], atol=5e-5)


def test_tutorial_schedule_is_the_tutorials():
  schedule = schedules.Schedule('tutorial', examples_per_step=128)
  assert schedule.last_step is None and schedule.label_smoothing == 0
  assert schedule.moving_average_decay == 0.9999
  decay_steps = int(50000 / 128 * 350)
  rates = _learning_rates(schedule, [0, decay_steps - 1, decay_steps])
  np.testing.assert_allclose(rates, [0.1, 0.1, 0.01], rtol=1e-6)
  with tf.Graph().as_default():
    assert isinstance(schedule.optimizer(0.1), tf.train.GradientDescentOptimizer)
    fast = schedules.Schedule('fast').optimizer(0.1)
    assert isinstance(fast, tf.train.MomentumOptimizer)
  with pytest.raises(ValueError, match='Unknown schedule'):
    schedules.Schedule('slow')


# Imports the library modules in a fresh interpreter and reports what the
# imports changed: a library must not start a command.
_IMPORT_PROGRAM = r'''
import json, os, sys
stderr, environ, argv = sys.stderr, dict(os.environ), list(sys.argv)
from cifar10 import cifar10, cifar10_input, kernels, precision, schedules, training
from absl import flags
print(json.dumps({
    'entry': 'cli_support.entry' in sys.modules,
    'stderr': sys.stderr is stderr,
    'environ': dict(os.environ) == environ,
    'argv': sys.argv == argv,
    'flags': sorted(name for name in flags.FLAGS
                    if flags.FLAGS.find_module_defining_flag(name) is None
                    or 'cifar10' in flags.FLAGS.find_module_defining_flag(
                        name)),
}))
'''


def test_importing_the_library_starts_no_command():
  found = suite_helpers.fresh_interpreter_json(
      _IMPORT_PROGRAM, unset=['TF_CPP_MIN_LOG_LEVEL'])
  assert found == {'entry': False, 'stderr': True, 'environ': True,
                   'argv': True, 'flags': []}


# The tutorial's users ran Python inside cifar10/ and imported its modules by
# their own names; a user's script beside them does the same.
_TUTORIAL_IMPORTS = r'''
import json, sys
import {first}
import {second}
import tensorflow.compat.v1 as tf
with tf.Graph().as_default():
  logits = cifar10.inference(tf.zeros([2, cifar10.IMAGE_SIZE,
                                       cifar10.IMAGE_SIZE, 3]))
  queue = tf.train.string_input_producer([sys.argv[1]])
  record = cifar10_input.read_cifar10(queue)
  with tf.Session() as session:
    session.run(tf.global_variables_initializer())
    coordinator = tf.train.Coordinator()
    threads = tf.train.start_queue_runners(session, coordinator)
    label, image = session.run([record.label, record.uint8image])
    coordinator.request_stop()
    coordinator.join(threads)
print(json.dumps([logits.shape.as_list(), int(label[0]), list(image.shape)]))
'''


@pytest.mark.parametrize('first, second', [('cifar10_input', 'cifar10'),
                                           ('cifar10', 'cifar10_input')])
def test_the_tutorials_modules_import_from_inside_their_folder(tmp_path,
                                                               first, second):
  data_dir = cifar_fixtures.write_dataset(tmp_path, records_per_file=3)
  first_file = os.path.join(data_dir, 'cifar-10-batches-bin',
                            'data_batch_1.bin')
  with open(first_file, 'rb') as f:
    first_label = f.read(1)[0]
  result = subprocess.run(
      [sys.executable, '-c', _TUTORIAL_IMPORTS.format(first=first,
                                                      second=second),
       first_file],
      capture_output=True, text=True, timeout=120,
      cwd=os.path.join(cifar_fixtures.REPO_ROOT, 'cifar10'))
  assert result.returncode == 0, result.stderr
  shape, label, image_shape = json.loads(result.stdout.splitlines()[-1])
  assert shape == [2, 10] and image_shape == [32, 32, 3]
  assert label == first_label


def test_the_tutorials_constants_keep_their_names_and_values():
  # The original cifar10.py's module constants, which its readers and the
  # original cifar10_multi_gpu_train.py use by these names.
  assert (cifar10.IMAGE_SIZE, cifar10.NUM_CLASSES) == (24, 10)
  assert cifar10.NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN == 50000
  assert cifar10.NUM_EXAMPLES_PER_EPOCH_FOR_EVAL == 10000
  assert cifar10.MOVING_AVERAGE_DECAY == 0.9999
  assert cifar10.NUM_EPOCHS_PER_DECAY == 350.0
  assert cifar10.LEARNING_RATE_DECAY_FACTOR == 0.1
  assert cifar10.INITIAL_LEARNING_RATE == 0.1
  assert cifar10.TOWER_NAME == 'tower'
