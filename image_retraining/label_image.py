"""Labels an image with a model made by retrain.py; prints the top scores.

Run it (from this folder, from the repository root as
image_retraining/label_image.py, or as the console script label_image):

  python image_retraining/label_image.py --image IMG.png \
      --saved_model_dir OUT --labels OUT/labels.txt

Most of a run is loading TensorFlow and the SavedModel.
"""
import os
import sys

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('image_retraining.label_image'))

from absl import flags
import numpy as np
import tensorflow as tf

from cli_support import entry
from image_retraining import features
from image_retraining import final_layer
from image_retraining.errors import RetrainError
from tutorials_common.errors import one_line

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('image', '', 'Image to label: PNG, JPEG, GIF, BMP or '
                      'WebP (path).')
  flags.DEFINE_string('saved_model_dir', '/tmp/retrained_model',
                      'SavedModel written by retrain (directory path).')
  flags.DEFINE_string('labels', '', 'Labels file, one per line (path; '
                      'default: labels.txt inside --saved_model_dir).')
  flags.DEFINE_integer('top_k', 5, 'How many categories to print (count).',
                       lower_bound=1)


def label_image(image_path, saved_model_dir, labels_path=None, top_k=5):
  """Returns [(label, score)] best first."""
  labels = final_layer.read_labels(
      labels_path or os.path.join(saved_model_dir, 'labels.txt'))
  if not os.path.isfile(image_path):
    raise RetrainError("Image '%s' not found." % image_path)
  image = features.decode_image_file(image_path)
  if not os.path.isdir(saved_model_dir):
    raise RetrainError("SavedModel directory '%s' not found." %
                       saved_model_dir)
  try:
    model = tf.saved_model.load(saved_model_dir)
    outputs = model.signatures['serving_default'](images=image[tf.newaxis])
  except Exception as e:  # pylint: disable=broad-except
    raise RetrainError("Cannot run SavedModel '%s': %s" %
                       (saved_model_dir, one_line(e)))
  probs = list(outputs.values())[0].numpy()[0]
  if len(probs) != len(labels):
    raise RetrainError('The model has %d outputs but the labels file has %d '
                       'lines.' % (len(probs), len(labels)))
  order = np.argsort(-probs)[:top_k]
  return [(labels[i], float(probs[i])) for i in order]


def main(argv):
  del argv  # Unused.
  if not FLAGS.image:
    raise RetrainError('--image is required.')
  for label, score in label_image(FLAGS.image, FLAGS.saved_model_dir,
                                  FLAGS.labels or None, FLAGS.top_k):
    print('%s (score = %.5f)' % (label, score))


def run():
  """Entry point of `label_image`."""
  entry.run(main, define_flags, graph_mode=False)

