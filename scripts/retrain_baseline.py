"""From-scratch small CNN on the same image folders, for comparison: what
scripts/retrain_real_data.py measures retraining against.

tf.compat.v1 graph: conv 5x5x32 - pool - conv 5x5x64 - pool - dense 128 -
softmax, Adam, on images resized to 32x32 as the CIFAR-10 network's are.
"""
import bench_common  # noqa: F401  First: it puts the repository on sys.path.
import numpy as np
import tensorflow.compat.v1 as tf1

from tutorials_common import images


def load_images(paths):
  """float32 [N, 32, 32, 3] in [0, 1] of image files, decoded by the one
  decoder and resized by the CIFAR-10 network's rule."""
  return np.stack([images.resize_for_cifar10(
      images.read_image_file(p)[None])[0].numpy() / 255.0 for p in paths])


def train_and_test(train_x, train_y, test_x, test_y, class_count, steps=2000,
                   batch_size=64, learning_rate=1e-3, seed=0):
  """Returns test accuracy of a small CNN trained from scratch."""
  rng = np.random.RandomState(seed)
  graph = tf1.Graph()
  with graph.as_default():
    tf1.set_random_seed(seed)
    x = tf1.placeholder(tf1.float32, [None] + list(train_x.shape[1:]))
    y = tf1.placeholder(tf1.int64, [None])
    training = tf1.placeholder_with_default(False, [])
    net = x - 0.5
    # tf.compat.v1.layers needs Keras 2, which TensorFlow 2.21 no longer has.
    for i, filters in enumerate((32, 64)):
      with tf1.variable_scope('conv%d' % (i + 1)):
        kernel = tf1.get_variable(
            'weights', [5, 5, net.shape[-1], filters],
            initializer=tf1.glorot_uniform_initializer())
        biases = tf1.get_variable('biases', [filters],
                                  initializer=tf1.zeros_initializer())
        net = tf1.nn.relu(tf1.nn.conv2d(net, kernel, 1, 'SAME') + biases)
      net = tf1.nn.max_pool(net, 2, 2, 'SAME')
    net = tf1.reshape(net, [-1, net.shape[1:].num_elements()])

    def dense(inputs, units, name):
      with tf1.variable_scope(name):
        weights = tf1.get_variable(
            'weights', [inputs.shape[-1], units],
            initializer=tf1.glorot_uniform_initializer())
        biases = tf1.get_variable('biases', [units],
                                  initializer=tf1.zeros_initializer())
        return tf1.matmul(inputs, weights) + biases

    net = tf1.nn.relu(dense(net, 128, 'fc1'))
    net = tf1.nn.dropout(net, rate=tf1.where(training, 0.5, 0.0))
    logits = dense(net, class_count, 'fc2')
    loss = tf1.reduce_mean(tf1.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y, logits=logits))
    train_op = tf1.train.AdamOptimizer(learning_rate).minimize(loss)
    correct = tf1.reduce_sum(tf1.cast(tf1.equal(tf1.argmax(logits, 1), y),
                                      tf1.int32))
    init = tf1.global_variables_initializer()
  with tf1.Session(graph=graph) as sess:
    sess.run(init)
    for _ in range(steps):
      idx = rng.randint(0, len(train_y), batch_size)
      batch = train_x[idx].copy()
      flip = rng.rand(len(idx)) < 0.5
      batch[flip] = batch[flip, :, ::-1]
      sess.run(train_op, {x: batch, y: train_y[idx], training: True})
    hits = sum(sess.run(correct, {x: test_x[i:i + 500], y: test_y[i:i + 500]})
               for i in range(0, len(test_y), 500))
  return hits / float(len(test_y))
