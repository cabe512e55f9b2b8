"""The training images' distortions for a whole batch, two ways: TensorFlow
ops, or the fused kernel of distort_kernel.cc.

Per image i: a size x size crop at (offset_y[i], offset_x[i]), mirrored if
flip[i], brightness_delta[i] added, contrast scaled by contrast_factor[i]
around each channel's mean, then per-image standardisation: the arithmetic
of tf.image's per-image functions (tests/test_cifar10_input.py checks both
ways against them). images are uint8, NHWC or (depth_major) [batch,
channel, row, column], as the CIFAR-10 records hold them; the result is
float32 NHWC.
"""
import tensorflow.compat.v1 as tf


def ops_distort(images, offset_y, offset_x, flip, brightness_delta,
                contrast_factor, size, depth_major=False):
  """The distortions as a few TensorFlow ops per batch."""
  if depth_major:
    images = tf.transpose(images, [0, 2, 3, 1])
  images = tf.cast(images, tf.float32)
  window = tf.range(size)
  rows = offset_y[:, None] + window[None, :]
  cols = offset_x[:, None] + window[None, :]
  cols = tf.where_v2(flip[:, None], tf.reverse(cols, [1]), cols)
  images = tf.gather(images, rows, axis=1, batch_dims=1)
  images = tf.gather(images, cols, axis=2, batch_dims=1)
  images += brightness_delta[:, None, None, None]
  channel_means = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
  images = ((images - channel_means) * contrast_factor[:, None, None, None] +
            channel_means)
  return tf.image.per_image_standardization(images)


def fused_distort(ops, images, offset_y, offset_x, flip, brightness_delta,
                  contrast_factor, size, depth_major=False):
  """The distortions as the fused kernel (ops: the loaded library): two
  passes over each image. The brightness change is left out: per-image
  standardisation subtracts it again."""
  del brightness_delta  # Undone by the standardisation.
  return ops.tutorial_distort_images(images, offset_y, offset_x, flip,
                                     contrast_factor, size=size,
                                     depth_major=depth_major)
