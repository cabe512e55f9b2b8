"""Trains a new softmax layer on bottlenecks and exports it as a SavedModel.

The layer is built as tf.compat.v1 graph code (placeholders, a session and
FileWriter summaries, as in the original retrain.py); the exported SavedModel
chains the feature extractor and the trained layer behind one signature:
float images [N, H, W, 3] in [0, 1] -> `final_result` probabilities [N, C].
"""
import os
import sys

import numpy as np
import tensorflow as tf
import tensorflow.compat.v1 as tf1

from image_retraining import features
from image_retraining.errors import RetrainError
from tutorials_common import files


def _sample(rng, n, batch_size):
  if batch_size < 0 or batch_size >= n:
    return np.arange(n)
  return rng.choice(n, batch_size, replace=False)


def build_graph(bottleneck_size, class_count, learning_rate):
  """The original's final layer: dense + softmax, GD on cross entropy."""
  graph = tf1.Graph()
  with graph.as_default():
    x = tf1.placeholder(tf1.float32, [None, bottleneck_size],
                        name='BottleneckInputPlaceholder')
    y = tf1.placeholder(tf1.int64, [None], name='GroundTruthInput')
    with tf1.variable_scope('final_retrain_ops'):
      w = tf1.get_variable(
          'final_weights', [bottleneck_size, class_count],
          initializer=tf1.truncated_normal_initializer(stddev=0.001))
      b = tf1.get_variable('final_biases', [class_count],
                           initializer=tf1.zeros_initializer())
      logits = tf1.matmul(x, w) + b
      tf1.summary.histogram('pre_activations', logits)
    probs = tf1.nn.softmax(logits, name='final_result')
    loss = tf1.losses.sparse_softmax_cross_entropy(labels=y, logits=logits)
    tf1.summary.scalar('cross_entropy', loss)
    train_op = tf1.train.GradientDescentOptimizer(learning_rate).minimize(loss)
    prediction = tf1.argmax(probs, 1)
    accuracy = tf1.reduce_mean(tf1.cast(tf1.equal(prediction, y), tf1.float32))
    tf1.summary.scalar('accuracy', accuracy)
    merged = tf1.summary.merge_all()
    init = tf1.global_variables_initializer()
  return dict(graph=graph, x=x, y=y, w=w, b=b, loss=loss, train_op=train_op,
              prediction=prediction, accuracy=accuracy, merged=merged,
              init=init)


def train(train_set, val_set, test_set, class_count, how_many_training_steps=4000,
          learning_rate=0.01, train_batch_size=100, eval_step_interval=10,
          validation_batch_size=100, test_batch_size=-1, summaries_dir=None,
          fresh_train_batch=None, seed=0, out=None):
  """Trains; returns dict(weights, biases, test_accuracy, misclassified).

  Sets are (features [N, D], labels [N], names). fresh_train_batch, when given,
  is called each step with sampled training indices and returns distorted
  features for them (bypassing the cached training features).
  """
  out = out or sys.stdout  # The current one, not the one at import.
  now = lambda: __import__('datetime').datetime.now().strftime(
      '%Y-%m-%d %H:%M:%S')
  rng = np.random.RandomState(seed)
  train_x, train_y, _ = train_set
  g = build_graph(train_x.shape[1], class_count, learning_rate)
  # Not `with sess:` -- that would make the graph the default one and turn
  # the eager feature extraction of distortions into graph ops.
  sess = tf1.Session(graph=g['graph'])
  try:
    sess.run(g['init'])
    writers = {}
    if summaries_dir:
      with g['graph'].as_default():  # FileWriter refuses eager mode
        writers['train'] = tf1.summary.FileWriter(
            os.path.join(summaries_dir, 'train'), g['graph'])
        writers['validation'] = tf1.summary.FileWriter(
            os.path.join(summaries_dir, 'validation'))
    for step in range(how_many_training_steps):
      idx = _sample(rng, len(train_y), train_batch_size)
      xs = fresh_train_batch(idx) if fresh_train_batch else train_x[idx]
      feed = {g['x']: xs, g['y']: train_y[idx]}
      summary, _ = sess.run([g['merged'], g['train_op']], feed)
      if 'train' in writers:
        writers['train'].add_summary(summary, step)
      is_last = step + 1 == how_many_training_steps
      if (step % eval_step_interval) == 0 or is_last:
        acc, loss = sess.run([g['accuracy'], g['loss']], feed)
        out.write('%s: Step %d: Train accuracy = %.1f%%\n' %
                  (now(), step, acc * 100))
        out.write('%s: Step %d: Cross entropy = %f\n' % (now(), step, loss))
        val_x, val_y, _ = val_set
        if len(val_y):
          vidx = _sample(rng, len(val_y), validation_batch_size)
          summary, vacc = sess.run(
              [g['merged'], g['accuracy']],
              {g['x']: val_x[vidx], g['y']: val_y[vidx]})
          if 'validation' in writers:
            writers['validation'].add_summary(summary, step)
          out.write('%s: Step %d: Validation accuracy = %.1f%% (N=%d)\n' %
                    (now(), step, vacc * 100, len(vidx)))
        out.flush()
    for writer in writers.values():
      writer.close()
    test_x, test_y, test_names = test_set
    result = dict(misclassified=[], test_accuracy=None)
    if len(test_y):
      tidx = _sample(rng, len(test_y), test_batch_size)
      tacc, pred = sess.run([g['accuracy'], g['prediction']],
                            {g['x']: test_x[tidx], g['y']: test_y[tidx]})
      out.write('Final test accuracy = %.1f%% (N=%d)\n' %
                (tacc * 100, len(tidx)))
      result['test_accuracy'] = float(tacc)
      result['misclassified'] = [(test_names[i], int(p), int(test_y[i]))
                                 for i, p in zip(tidx, pred)
                                 if p != test_y[i]]
    else:
      out.write('No testing images: skipping the final test accuracy.\n')
    result['weights'], result['biases'] = sess.run([g['w'], g['b']])
  finally:
    sess.close()
  return result


class RetrainedModel(tf.Module):
  """Feature extractor + trained layer: images in, probabilities out."""

  def __init__(self, extractor, weights, biases, output_name='final_result'):
    super(RetrainedModel, self).__init__()
    self.feature_module = extractor.module
    self.image_size = extractor.image_size
    self.output_name = output_name
    self.final_weights = tf.Variable(weights, trainable=False)
    self.final_biases = tf.Variable(biases, trainable=False)

  @tf.function(input_signature=[
      tf.TensorSpec([None, None, None, 3], tf.float32, name='images')])
  def __call__(self, images):
    if self.image_size is not None:
      images = tf.image.resize(images, self.image_size)
    bottleneck = features._call(self.feature_module, images)  # pylint: disable=protected-access
    logits = tf.matmul(bottleneck, self.final_weights) + self.final_biases
    return {self.output_name: tf.nn.softmax(logits)}


def check_export_dir(saved_model_dir, flag='--saved_model_dir'):
  """Raises RetrainError unless saved_model_dir is new or an empty folder:
  retrain checks it before it trains, so that no run's work is thrown away."""
  if os.path.lexists(saved_model_dir) and not os.path.isdir(saved_model_dir):
    raise RetrainError("%s '%s' exists and is not a folder; choose a new "
                       "directory." % (flag, saved_model_dir))
  if os.path.isdir(saved_model_dir) and os.listdir(saved_model_dir):
    raise RetrainError("%s '%s' exists and is not empty; choose a new "
                       "directory." % (flag, saved_model_dir))


def export(extractor, weights, biases, saved_model_dir, labels,
           output_labels=None, output_name='final_result'):
  """Writes the SavedModel (and labels.txt inside it, plus output_labels)."""
  check_export_dir(saved_model_dir)
  model = RetrainedModel(extractor, weights, biases, output_name)
  # Written beside saved_model_dir and renamed once complete: a full disk
  # leaves no half model that label_image would try to load.
  with files.staged_folder(saved_model_dir, 'the retrained model') as new:
    tf.saved_model.save(model, new,
                        signatures={'serving_default': model.__call__})
    write_labels(os.path.join(new, 'labels.txt'), labels)
  if output_labels:
    write_labels(output_labels, labels)


def write_labels(path, labels):
  if os.path.dirname(path):
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as e:
      raise files.cannot_write(path, e) from None
  files.write_atomically(path, '\n'.join(labels) + '\n')


def read_labels(path):
  try:
    with open(path) as f:
      return [line.strip() for line in f if line.strip()]
  except OSError as e:
    raise RetrainError("Cannot read labels file '%s': %s" % (path, e.strerror))
