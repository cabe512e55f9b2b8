"""Classifies your own pictures with a trained CIFAR-10 model.

Run it (from this folder, from the repository root as
cifar10/cifar10_predict.py, or as the console script cifar10_predict):

  python cifar10_predict.py --checkpoint_dir=/tmp/cifar10_train IMAGE [IMAGE ...]

Each IMAGE is a file or a folder (every file in it and its sub-folders). A
PNG, JPEG, GIF, BMP or WebP of any size is read by its content, whatever its
name says, resized to 32x32 and put through exactly cifar10_eval.py's
preprocessing (central 24x24 crop, standardisation) and the network, with the
moving averages of the weights as cifar10_eval.py restores them. Prints one
line per image, the --top_k most probable classes:

  cat.jpg: cat 0.712, dog 0.201, frog 0.035

--chart=FILE.png (or .svg) draws each image beside a bar chart of its ten
probabilities named by class, the most probable in orange (matplotlib: pip
install -e '.[charts]').

Images go through the network --batch_size at a time. A file that cannot be
read as an image is named on stderr and skipped; the command fails (status 2)
only when no file could be read, or when there is no usable checkpoint.
"""
import os
import sys

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('cifar10.cifar10_predict'))

from cli_support import entry
from tutorials_common import plots
from tutorials_common.errors import UsageError
from tutorials_common.errors import one_line
from absl import flags
import numpy as np
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import trained_model

FLAGS = flags.FLAGS

# The chart shows at most this many images (one row each).
MAX_CHART_ROWS = 50


def define_flags():
  flags.DEFINE_string('checkpoint_dir', '/tmp/cifar10_train',
                      'Folder with the trained checkpoints (the trainer\'s '
                      '--train_dir; the newest is used), or one checkpoint\'s '
                      'path prefix.')
  flags.DEFINE_string('data_dir', cifar10.DEFAULT_DATA_DIR,
                      'CIFAR-10 data folder (path); only its batches.meta.txt '
                      'is read, for the class names. Without one, the ten '
                      'standard names are used.')
  flags.DEFINE_integer('top_k', 3, 'Classes printed per image (classes, '
                       '1-10), most probable first.', lower_bound=1,
                       upper_bound=cifar10.NUM_CLASSES)
  flags.DEFINE_integer('batch_size', cifar10.DEFAULT_BATCH_SIZE,
                       'Images decoded and classified per session run '
                       '(images).', lower_bound=1)
  flags.DEFINE_boolean('eval_flip', False,
                       'Also score the mirror image of each picture and '
                       'average the two softmax outputs (true/false), as '
                       'cifar10_eval.py --eval_flip does.')
  flags.DEFINE_string('chart', None,
                      'Write a bar chart of the probabilities, one row per '
                      'image (the first %d), to this PNG or SVG file (path; '
                      'needs matplotlib). '
                      'Default: no chart.' % MAX_CHART_ROWS)


class NoImagesError(UsageError):
  """Nothing to classify."""


def image_paths(arguments):
  """(paths, problems): the files named or inside the folders named, in
  order (folders sorted, recursively, hidden files left out), and (path,
  reason) for each argument that is neither."""
  paths, problems = [], []
  for argument in arguments:
    if os.path.isdir(argument):
      found = []
      for folder, subfolders, files in os.walk(argument):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith('.'))
        found.extend(os.path.join(folder, name) for name in sorted(files)
                     if not name.startswith('.'))
      if not found:
        problems.append((argument, 'the folder holds no files'))
      paths.extend(found)
    elif os.path.exists(argument):
      paths.append(argument)
    else:
      problems.append((argument, 'no such file or folder'))
  return paths, problems


class Predictor(object):
  """The graph: encoded images -> pixels -> probabilities, and its session."""

  def __init__(self, checkpoint_path, flip=False):
    dtype = trained_model.checkpoint_dtype(checkpoint_path)
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.encoded = tf.placeholder(tf.string, [None], name='encoded_images')
      self.pixels = trained_model.decode_images(self.encoded)
      self.probabilities = trained_model.probabilities(self.pixels, flip, dtype)
      saver, self.uses_averages = trained_model.saver(checkpoint_path)
      self.graph.finalize()
    self.sess = tf.Session(graph=self.graph)
    with self.graph.as_default():
      trained_model.restore(self.sess, saver, checkpoint_path)

  def classify(self, contents):
    """(probabilities [M, 10], pixels [M, 32, 32, 3], failures) for a list
    of encoded images: the rows are the images that decoded, in order;
    failures is a list of (index, reason) for the others."""
    try:
      # One session run for the whole batch, the usual case.
      probabilities, pixels = self.sess.run(
          [self.probabilities, self.pixels], {self.encoded: contents})
      return probabilities, pixels, []
    except tf.errors.OpError:
      pass
    # Some image failed to decode: find which, one at a time.
    good, failures = [], []
    for i, data in enumerate(contents):
      try:
        good.append(self.sess.run(self.pixels, {self.encoded: [data]})[0])
      except tf.errors.OpError as e:
        failures.append((i, one_line(e)))
    if not good:
      return (np.zeros([0, cifar10.NUM_CLASSES], np.float32),
              np.zeros([0, trained_model.SIZE, trained_model.SIZE, 3], np.float32),
              failures)
    pixels = np.stack(good)
    probabilities = self.sess.run(self.probabilities, {self.pixels: pixels})
    return probabilities, pixels, failures


def describe(probabilities, names, top_k):
  """'cat 0.712, dog 0.201, frog 0.035': the top_k classes, most probable first."""
  order = np.argsort(-probabilities, kind='stable')[:top_k]
  return ', '.join('%s %.3f' % (names[i], probabilities[i]) for i in order)


def chart_figure(rows, names):
  """The --chart figure: per (path, pixels [32, 32, 3], probabilities) row,
  the picture as the network saw it beside its bars named by class."""
  return plots.prediction_figure(
      [(pixels, probabilities, os.path.basename(path))
       for path, pixels, probabilities in rows], names)


def main(argv):
  arguments = argv[1:]
  if not arguments:
    raise NoImagesError('give at least one image file or folder to classify, '
                        'e.g. cifar10_predict --checkpoint_dir=DIR cat.jpg')
  if FLAGS.chart:
    plots.check_chart_path(FLAGS.chart)
    plots.require_matplotlib()
  names, _ = trained_model.class_names(FLAGS.data_dir)
  checkpoint_path = trained_model.require_checkpoint(FLAGS.checkpoint_dir)
  paths, problems = image_paths(arguments)
  for path, reason in problems:
    sys.stderr.write('cifar10_predict: skipped %s: %s\n' % (path, reason))
  if not paths:
    raise NoImagesError('no image to classify in %s.' % ' '.join(arguments))
  predictor = Predictor(checkpoint_path, FLAGS.eval_flip)
  if not predictor.uses_averages:
    sys.stderr.write('cifar10_predict: %s\n' %
                     (trained_model.RAW_WEIGHTS_NOTE % checkpoint_path))
  classified, skipped, chart_rows = 0, len(problems), []
  for start in range(0, len(paths), FLAGS.batch_size):
    batch_paths, contents = [], []
    for path in paths[start:start + FLAGS.batch_size]:
      try:
        with open(path, 'rb') as f:
          contents.append(f.read())
        batch_paths.append(path)
      except (IOError, OSError) as e:
        sys.stderr.write('cifar10_predict: skipped %s: cannot read it (%s)\n'
                         % (path, e.strerror or e))
        skipped += 1
    if not contents:
      continue
    probabilities, pixels, failures = predictor.classify(contents)
    failed = dict(failures)
    row = 0
    for i, path in enumerate(batch_paths):
      if i in failed:
        sys.stderr.write('cifar10_predict: skipped %s: not an image it can '
                         'read (%s)\n' % (path, failed[i]))
        skipped += 1
        continue
      print('%s: %s' % (path, describe(probabilities[row], names,
                                       FLAGS.top_k)))
      if FLAGS.chart and len(chart_rows) < MAX_CHART_ROWS:
        chart_rows.append((path, pixels[row], probabilities[row]))
      row += 1
      classified += 1
    sys.stdout.flush()
  if not classified:
    raise NoImagesError('none of the %d file(s) could be read as an image.'
                        % skipped)
  if FLAGS.chart:
    plots.save_figure(chart_figure(chart_rows, names), FLAGS.chart)
    print('Bar chart written to %s' % FLAGS.chart)
  if skipped:
    sys.stderr.write('cifar10_predict: classified %d image(s), skipped %d.\n'
                     % (classified, skipped))
  return 0


def run():
  entry.run(main, define_flags,
            arguments='IMAGE_OR_FOLDER [IMAGE_OR_FOLDER ...]')

