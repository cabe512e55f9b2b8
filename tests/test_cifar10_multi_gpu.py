"""cifar10_multi_gpu_train: tower math, CPU fallback, checkpoints shared with
cifar10_train and cifar10_eval."""
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from cifar10 import cifar10_eval
from cifar10 import cifar10_multi_gpu_train as multi
from cifar_fixtures import run_script

MULTI = os.path.join('cifar10', 'cifar10_multi_gpu_train.py')
TRAIN = os.path.join('cifar10', 'cifar10_train.py')


def _one_step(images, labels, num_towers, initial=None):
  """Variables after one synchronous step on num_towers CPU devices."""
  with tf.Graph().as_default(), tf.device('/cpu:0'):
    global_step = tf.train.get_or_create_global_step()
    devices, _ = multi.tower_devices(num_towers, 0)
    train_op, _, _ = multi.build_train_op(
        tf.constant(images), tf.constant(labels), devices, global_step,
        batch_size=len(labels) // num_towers)
    placed = {op.device for op in tf.get_default_graph().get_operations()
              if op.name.startswith('tower_') and op.type == 'Conv2D'}
    config = tf.ConfigProto(device_count={'CPU': num_towers})
    with tf.Session(config=config) as sess:
      sess.run(tf.global_variables_initializer())
      variables = {v.op.name: v for v in tf.trainable_variables()}
      if initial is None:
        initial = sess.run(variables)
      else:
        for name, value in initial.items():
          variables[name].load(value, sess)
      sess.run(train_op)
      return initial, sess.run(variables), placed


def test_two_towers_of_b_update_like_one_tower_of_2b():
  rng = np.random.RandomState(0)
  images = rng.normal(size=(16, 24, 24, 3)).astype(np.float32)
  labels = rng.randint(0, 10, 16).astype(np.int32)
  initial, one_tower, placed_one = _one_step(images, labels, 1)
  _, two_towers, placed_two = _one_step(images, labels, 2, initial)
  assert placed_one == {'/device:CPU:0'}
  assert placed_two == {'/device:CPU:0', '/device:CPU:1'}
  for name in one_tower:
    assert not np.allclose(initial[name], one_tower[name]), name
    np.testing.assert_allclose(two_towers[name], one_tower[name], rtol=1e-4,
                               atol=1e-6, err_msg=name)


def test_tower_devices_fall_back_to_what_exists():
  assert multi.tower_devices(2, 2) == (['/gpu:0', '/gpu:1'], None)
  devices, note = multi.tower_devices(2, 1)
  assert devices == ['/gpu:0', '/gpu:0'] and 'found 1 GPU' in note
  devices, note = multi.tower_devices(3, 0)
  assert devices == ['/cpu:0', '/cpu:1', '/cpu:2'] and '3 CPU devices' in note


def test_two_towers_on_cpu_train_and_share_checkpoints_with_train_and_eval(
    cifar_trained, tmp_path, run_in_process):
  # Two towers resume cifar10_train.py's run, then cifar10_train.py resumes
  # theirs, and evaluation reads it.
  data_dir = cifar_trained['data_dir']
  train_dir = str(tmp_path / 'train')
  shutil.copytree(str(cifar_trained['train_dir']), train_dir)
  trained = cifar_trained['steps']
  # The trained run's kind of schedule (momentum), ending past the steps
  # here.
  common = ['--data_dir', data_dir, '--train_dir', train_dir,
            '--batch_size', '16', '--log_frequency', '5',
            '--schedule', 'fast', '--fast_epochs', '1']
  result = run_script([MULTI, '--num_gpus', '2', '--max_steps',
                       str(trained + 10)] + common)
  assert result.returncode == 0, result.stderr
  assert ('Asked for --num_gpus=2 but found 0 GPU(s): running the 2 towers '
          'on 2 CPU devices.') in result.stdout
  assert 'at step %d' % trained in result.stdout
  # 2 towers x 16 images a step; sec/batch is per tower.
  rates = re.findall(r'step %d, loss = [\d.]+ \(([\d.]+) examples/sec; '
                     r'([\d.]+) sec/batch\)' % (trained + 10),
                     result.stdout)
  assert rates
  examples_per_sec, sec_per_batch = map(float, rates[0])
  # sec/batch is printed to 3 decimals: compare within that rounding.
  assert sec_per_batch == pytest.approx(16 / examples_per_sec, abs=6e-4)
  assert tf.train.latest_checkpoint(train_dir).endswith('-%d' % (trained + 10))

  evaluator = cifar10_eval.Evaluator('test', data_dir, 40, 40)
  precision, step = evaluator.evaluate(tf.train.latest_checkpoint(train_dir))
  assert step == trained + 10 and 0 <= precision <= 1

  # The single-device trainer resumes the two-tower run (in this process:
  # the towers' CPU devices need a process of their own, it does not).
  single = run_in_process('cifar10.cifar10_train',
                          ['--max_steps', str(trained + 15)] +
                          common)
  assert single.returncode == 0, single.stderr
  assert 'at step %d' % (trained + 10) in single.stdout
  assert tf.train.latest_checkpoint(train_dir).endswith('-%d' % (trained + 15))
