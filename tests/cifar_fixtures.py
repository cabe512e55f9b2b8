"""Small CIFAR-10 data sets and checkpoints written the way the real ones are."""
import os
import re
import subprocess
import sys

import numpy as np

# conftest imports this module in pytest-xdist's controller too, which runs no
# test: TensorFlow (which the cifar10 package imports) is imported only in the
# helpers that need it, so that it loads, and prints its start-up notices,
# only in the workers.

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cifar_records(labels, images):
  """Bytes of CIFAR-10 binary records: label byte, then R, G, B planes."""
  labels = np.asarray(labels, np.uint8)
  planes = np.asarray(images, np.uint8).transpose(0, 3, 1, 2).reshape(
      len(labels), -1)
  return np.concatenate([labels[:, None], planes], axis=1).tobytes()


def learnable_images(labels, seed=0):
  """32x32x3 images whose colour tells the class, with noise on top.

  Per-image standardisation and the brightness/contrast jitter leave the hue,
  so a few hundred steps of the tutorial's model learn it.
  """
  rng = np.random.RandomState(seed)
  labels = np.asarray(labels)
  angle = 2 * np.pi * labels / 10.0
  colour = np.stack([np.cos(angle), np.cos(angle + 2.1), np.cos(angle + 4.2)],
                    axis=1)
  images = 128 + 90 * colour[:, None, None, :] + rng.normal(
      0, 20, (len(labels), 32, 32, 3))
  return np.clip(images, 0, 255).astype(np.uint8)


# cifar10_input.BATCHES_DIR (test_cifar10_input checks they agree), restated
# to keep TensorFlow out of this module's import.
BATCHES_DIR = 'cifar-10-batches-bin'


def write_dataset(data_dir, records_per_file=200, test_labels=None, seed=0):
  """Writes data_dir/cifar-10-batches-bin with the five train and one test file."""
  batches = os.path.join(str(data_dir), BATCHES_DIR)
  os.makedirs(batches, exist_ok=True)
  rng = np.random.RandomState(seed)
  for i in range(1, 6):
    labels = rng.randint(0, 10, records_per_file)
    with open(os.path.join(batches, 'data_batch_%d.bin' % i), 'wb') as f:
      f.write(cifar_records(labels, learnable_images(labels, seed + i)))
  if test_labels is None:
    test_labels = rng.randint(0, 10, records_per_file)
  with open(os.path.join(batches, 'test_batch.bin'), 'wb') as f:
    f.write(cifar_records(test_labels, learnable_images(test_labels, seed + 9)))
  return str(data_dir)


# What TensorFlow itself prints (C++ log lines, deprecation notes), which no
# command may show on a user's console.
TENSORFLOW_NOISE = re.compile(r'^[IWEF]\d{4} .*|.*deprecat.*', re.M | re.I)


def run_script(args, cwd=REPO_ROOT, timeout=240, env=None, quiet=None):
  """Runs a command as a user would; returns the CompletedProcess (text).

  As a user has it, TF_CPP_MIN_LOG_LEVEL is unset; with quiet (the default
  for the package's commands, not for scripts/ and `python -c`), the run
  fails the test if TensorFlow's own lines reach its stdout or stderr.
  """
  if quiet is None:
    quiet = not (str(args[0]).startswith('scripts') or '-c' in args[:2])
  full_env = dict(os.environ, PYTHONUNBUFFERED='1')
  full_env.pop('TF_CPP_MIN_LOG_LEVEL', None)
  full_env.update(env or {})
  if args[0].endswith('.py'):
    args = [sys.executable] + list(args)
  result = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
  if quiet:
    noise = TENSORFLOW_NOISE.findall(result.stdout + result.stderr)
    assert not noise, '%s printed TensorFlow\'s own lines: %s' % (
        ' '.join(str(a) for a in args[:2]), noise[:3])
  return result


def run_retraining(name, *args):
  """Runs image_retraining/name as a user would, with these arguments."""
  return run_script([os.path.join('image_retraining', name)] +
                    [str(a) for a in args], timeout=300)


def write_checkpoint(train_dir, step, raw_class=None, shadow_class=None,
                     moving_averages=True, raw_scale=1.0):
  """A checkpoint of the tutorial's model at `step` in train_dir; its path.

  With moving_averages, it holds them as cifar10_train writes them (each
  shadow the initial value of its variable); without, it is a checkpoint
  written by other code, raw weights only. raw_scale multiplies the raw
  weights after the averages are taken, so the two differ. raw_class and
  shadow_class set the softmax biases (raw, and their moving average) so
  that the model always predicts that class.
  """
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from cifar10 import cifar10  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    cifar10.inference(tf.zeros([1, 24, 24, 3]))
    weights = tf.trainable_variables()
    biases = [v for v in weights if v.op.name == 'softmax_linear/biases'][0]
    maintain, assigns = [], [tf.assign(global_step, step)]
    if moving_averages:
      ema = tf.train.ExponentialMovingAverage(cifar10.MOVING_AVERAGE_DECAY,
                                              global_step)
      maintain = [ema.apply(weights)]  # shadow = the initial values
      if shadow_class is not None:
        assigns.append(tf.assign(ema.average(biases),
                                 100.0 * tf.one_hot(shadow_class, 10)))
    if raw_scale != 1.0:
      assigns += [tf.assign(v, v * raw_scale) for v in weights]
    saver = tf.train.Saver()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(maintain)
      sess.run(assigns)
      if raw_class is not None:
        sess.run(tf.assign(biases, 100.0 * tf.one_hot(raw_class, 10)))
      return saver.save(sess, os.path.join(str(train_dir), 'model.ckpt'),
                        global_step=step)


# Class names the CIFAR-10 export fixture's batches.meta.txt gives, so that
# tests see them come from --data_dir and not from the built-in list.
CIFAR10_EXPORT_NAMES = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog',
                        'horse', 'ship', 'lorry']
CIFAR10_EXPORT_TEST_IMAGES = 100


def cifar_test_images(data_dir):
  """uint8 [N, 32, 32, 3] images and labels of the fixture's test file."""
  from cifar10 import cifar10_input  # pylint: disable=g-import-not-at-top
  records = cifar10_input.read_records(
      cifar10_input.data_files(data_dir, eval_data=True)[0])
  return (np.ascontiguousarray(cifar10_input.record_images(records)),
          records[:, 0].astype(np.int64))
