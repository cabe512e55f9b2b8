"""The "Deep MNIST for experts" network, as a tf.compat.v1 graph.

x (784 floats in [0, 1]) -> 28x28x1 -> conv1 5x5x32 SAME + ReLU -> 2x2 max pool
-> conv2 5x5x64 + ReLU -> 2x2 max pool -> fc1 3136->1024 ReLU -> dropout
(keep_prob fed) -> fc2 1024->10 logits. 3,274,634 parameters.
"""
import collections

import numpy as np
import tensorflow.compat.v1 as tf

from tutorials_common import checkpoints

LEARNING_RATE = 1e-4
EVAL_CHUNK = 1000  # Test images per evaluation run: bounds the memory used.

Model = collections.namedtuple('Model', [
    'x', 'labels', 'keep_prob', 'logits', 'probabilities', 'conv1_raw',
    'conv1_relu', 'loss', 'correct', 'train_op', 'global_step'])


def weight_variable(shape):
  """A weight variable initialised as the tutorial did."""
  return tf.get_variable('weights', initializer=tf.truncated_normal(
      shape, stddev=0.1))


def bias_variable(shape):
  """A bias variable of 0.1s, so ReLUs start active."""
  return tf.get_variable('biases', initializer=tf.constant(0.1, shape=shape))


def conv2d(x, w):
  return tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding='SAME')


def max_pool_2x2(x):
  return tf.nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                        padding='SAME')


def build(learning_rate=LEARNING_RATE):
  """Builds the network, its loss and Adam training in the default graph."""
  x = tf.placeholder(tf.float32, [None, 784], name='x')
  labels = tf.placeholder(tf.int64, [None], name='labels')
  keep_prob = tf.placeholder_with_default(1.0, [], name='keep_prob')
  global_step = tf.train.get_or_create_global_step()

  x_image = tf.reshape(x, [-1, 28, 28, 1])

  # conv1
  with tf.variable_scope('conv1'):
    w_conv1 = weight_variable([5, 5, 1, 32])
    b_conv1 = bias_variable([32])
    conv1_raw = conv2d(x_image, w_conv1)
    h_conv1 = tf.nn.relu(conv1_raw + b_conv1, name='relu')
  h_pool1 = max_pool_2x2(h_conv1)

  # conv2
  with tf.variable_scope('conv2'):
    w_conv2 = weight_variable([5, 5, 32, 64])
    b_conv2 = bias_variable([64])
    h_conv2 = tf.nn.relu(conv2d(h_pool1, w_conv2) + b_conv2)
  h_pool2 = max_pool_2x2(h_conv2)

  # fc1
  with tf.variable_scope('fc1'):
    w_fc1 = weight_variable([7 * 7 * 64, 1024])
    b_fc1 = bias_variable([1024])
    h_pool2_flat = tf.reshape(h_pool2, [-1, 7 * 7 * 64])
    h_fc1 = tf.nn.relu(tf.matmul(h_pool2_flat, w_fc1) + b_fc1)

  # dropout
  h_fc1_drop = tf.nn.dropout(h_fc1, rate=1.0 - keep_prob)

  # fc2
  with tf.variable_scope('fc2'):
    w_fc2 = weight_variable([1024, 10])
    b_fc2 = bias_variable([10])
    logits = tf.add(tf.matmul(h_fc1_drop, w_fc2), b_fc2, name='logits')
  probabilities = tf.nn.softmax(logits, name='probabilities')

  loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits), name='loss')
  correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), labels),
                                  tf.float32), name='correct')
  train_op = tf.train.AdamOptimizer(learning_rate).minimize(
      loss, global_step=global_step)
  return Model(x, labels, keep_prob, logits, probabilities, conv1_raw,
               h_conv1, loss, correct, train_op, global_step)


def evaluate(sess, model, images, labels, chunk=EVAL_CHUNK):
  """(mean loss, accuracy) over all images, EVAL_CHUNK at a time."""
  total_loss = 0.0
  total_correct = 0.0
  for start in range(0, len(images), chunk):
    feed = {model.x: images[start:start + chunk],
            model.labels: labels[start:start + chunk]}
    loss, correct = sess.run([model.loss, model.correct], feed)
    total_loss += loss * len(feed[model.x])
    total_correct += correct
  return total_loss / len(images), total_correct / len(images)


def look_at(sess, model, digit):
  """Probabilities [10] and conv1's maps before and after bias + ReLU
  ([28, 28, 32] each) for one MNIST-like digit (784 floats in [0, 1])."""
  probabilities, raw, relu = sess.run(
      [model.probabilities, model.conv1_raw, model.conv1_relu],
      {model.x: np.reshape(digit, [1, 784])})
  return probabilities[0], raw[0], relu[0]


def restore(checkpoint_dir):
  """A session and model restored from the latest checkpoint in checkpoint_dir."""
  path = checkpoints.require_checkpoint(
      checkpoint_dir, how_to_train='mnist_deep --checkpoint_dir=%s, or python '
      'mnist_cnn/mnist_deep.py in a checkout' % checkpoint_dir)
  graph = tf.Graph()
  with graph.as_default():
    model = build()
    saver = tf.train.Saver()
    sess = tf.Session(graph=graph)
    saver.restore(sess, path)
  graph.finalize()
  return sess, model
