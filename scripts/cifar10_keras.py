"""The tutorial's CIFAR-10 model written the way a Keras user would today.

The speed reference for scripts/benchmark_speed.py: the same network (conv
5x5x64, max-pool 3x3/2, LRN, conv 5x5x64, LRN, max-pool, fully connected 384
and 192, linear 10), the same initialisation and weight decay (0.004 * l2_loss
on the two hidden fully connected layers), the same distortions (random 24x24
crop, flip, brightness, contrast, per-image standardisation) and SGD at 0.1,
batch 128, fed by tf.data from the binary files, trained with `model.fit`.

  python scripts/cifar10_keras.py --data_dir=../shared/datasets/cifar10 --steps=300

Prints cifar10_train.py's log line every --log_frequency steps. It reads and
distorts the records with cifar10_input's functions, so that only the model
and the training loop differ from cifar10_train.py (docs/performance.md compares
their examples/sec).
"""
import argparse
import sys
import time
from datetime import datetime

import bench_common  # noqa: F401  (puts the repository on sys.path)
import keras
import tensorflow as tf

from cifar10 import cifar10_input

LOG_LINE = '%s: step %d, loss = %.2f (%.1f examples/sec; %.3f sec/batch)'


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default='/tmp/cifar10_data',
                      help='Folder holding cifar-10-batches-bin/.')
  parser.add_argument('--steps', type=int, default=300,
                      help='Training steps (batches).')
  parser.add_argument('--batch_size', type=int, default=128,
                      help='Images per step.')
  parser.add_argument('--log_frequency', type=int, default=10,
                      help='Steps between log lines.')
  parser.add_argument('--precision', default='float32',
                      choices=['float32', 'mixed_bfloat16', 'mixed_float16'],
                      help="Keras's mixed-precision policy.")
  return parser.parse_args(argv)


def distort(record):
  """One record -> the tutorial's distorted image and its label."""
  images, labels = cifar10_input.decode_records(record)
  return cifar10_input.distort_image(images[0]), labels[0]


def training_data(data_dir, batch_size):
  return (tf.data.FixedLengthRecordDataset(
      cifar10_input.data_files(data_dir), cifar10_input.RECORD_BYTES)
          .shuffle(20000).repeat()
          .map(distort, num_parallel_calls=tf.data.AUTOTUNE)
          .batch(batch_size, drop_remainder=True)
          .prefetch(tf.data.AUTOTUNE))


def lrn(x):
  # In float32 under a mixed policy too, as cifar10.py does it (and
  # tf.nn.lrn has no bfloat16 kernel on the CPU).
  return tf.cast(tf.nn.lrn(tf.cast(x, tf.float32), depth_radius=4, bias=1.0,
                           alpha=0.001 / 9.0, beta=0.75), x.dtype)


def build_model():
  """The tutorial's network, layer for layer."""
  layers = keras.layers
  init = keras.initializers.TruncatedNormal
  # keras' L2(c) adds c * sum(w**2); the tutorial adds 0.004 * sum(w**2) / 2.
  decay = keras.regularizers.L2(0.002)
  return keras.Sequential([
      keras.Input((24, 24, 3)),
      # conv1
      layers.Conv2D(64, 5, padding='same', activation='relu',
                    kernel_initializer=init(stddev=5e-2)),
      # pool1, norm1
      layers.MaxPooling2D(3, 2, padding='same'),
      layers.Lambda(lrn),
      # conv2
      layers.Conv2D(64, 5, padding='same', activation='relu',
                    kernel_initializer=init(stddev=5e-2),
                    bias_initializer=keras.initializers.Constant(0.1)),
      # norm2, pool2
      layers.Lambda(lrn),
      layers.MaxPooling2D(3, 2, padding='same'),
      layers.Flatten(),
      # local3, local4
      layers.Dense(384, activation='relu', kernel_initializer=init(stddev=0.04),
                   bias_initializer=keras.initializers.Constant(0.1),
                   kernel_regularizer=decay),
      layers.Dense(192, activation='relu', kernel_initializer=init(stddev=0.04),
                   bias_initializer=keras.initializers.Constant(0.1),
                   kernel_regularizer=decay),
      # softmax_linear
      layers.Dense(10, kernel_initializer=init(stddev=1 / 192.0)),
      # The logits in float32 for the loss, as Keras's mixed-precision guide
      # does it (nothing to do under float32).
      layers.Activation('linear', dtype='float32'),
  ])


class RateLogger(keras.callbacks.Callback):
  """Prints cifar10_train.py's log line every log_frequency steps."""

  def __init__(self, batch_size, log_frequency):
    super(RateLogger, self).__init__()
    self._batch_size = batch_size
    self._log_frequency = log_frequency

  def on_train_begin(self, logs=None):
    self._start = time.time()

  def on_train_batch_end(self, batch, logs=None):
    step = batch + 1
    if step % self._log_frequency == 0:
      now = time.time()
      duration = now - self._start
      self._start = now
      print(LOG_LINE % (datetime.now(), step, logs['loss'],
                        self._log_frequency * self._batch_size / duration,
                        duration / self._log_frequency))
      sys.stdout.flush()


def main(argv=None):
  args = parse_args(argv)
  keras.mixed_precision.set_global_policy(args.precision)
  model = build_model()
  model.compile(optimizer=keras.optimizers.SGD(0.1),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  print('Keras %s, backend %s, TensorFlow %s, policy %s' % (
      keras.__version__, keras.backend.backend(), tf.__version__,
      args.precision))
  model.fit(training_data(args.data_dir, args.batch_size), epochs=1,
            steps_per_epoch=args.steps, verbose=0,
            callbacks=[RateLogger(args.batch_size, args.log_frequency)])
  return 0


if __name__ == '__main__':
  sys.exit(main())
