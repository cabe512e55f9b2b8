"""Retrains a new top layer on your own image folders (transfer learning).

Run it (from this folder, from the repository root as
image_retraining/retrain.py, or as the console script retrain):

  python image_retraining/retrain.py --image_dir DIR --tfhub_module MODULE \
      --saved_model_dir OUT --output_labels OUT/labels.txt

MODULE is a TF Hub handle (needs tensorflow_hub + internet) or a local
feature-vector SavedModel (e.g. from export_cifar10_features.py or
cifar10_export.py: their `feature_vector` signature is used). Each
image's features are computed once and cached in --bottleneck_dir, so a
re-run, or thousands of steps of the final layer, are quick. Accuracy
depends on the extractor (docs/performance.md has a measured run).
"""
import os
import sys

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('image_retraining.retrain'))

from absl import flags
import numpy as np

from cli_support import entry
from image_retraining import bottlenecks
from image_retraining import distortions
from image_retraining import features
from image_retraining import final_layer
from image_retraining import split
from image_retraining.errors import RetrainError

FLAGS = flags.FLAGS


def define_flags():
  """Defines the original retrain.py flags."""
  flags.DEFINE_string('image_dir', '', 'Folder of labelled images: one '
                      'sub-folder (category) of PNG/JPEG files each (path).')
  flags.DEFINE_string('output_graph', '', 'Also save the retrained SavedModel '
                      'here (a directory path; the original wrote a frozen '
                      '.pb); empty: only --saved_model_dir.')
  flags.DEFINE_string('output_labels', '/tmp/output_labels.txt',
                      'Where to write the labels, one per line (path).')
  flags.DEFINE_string('summaries_dir', '/tmp/retrain_logs',
                      'TensorBoard summaries, sub-dirs train/ and validation/ '
                      '(path; empty: none).')
  flags.DEFINE_integer('how_many_training_steps', 4000,
                       'Training steps (batches).', lower_bound=0)
  flags.DEFINE_float('learning_rate', 0.01, 'Gradient descent learning rate '
                     '(per step).')
  flags.register_validator('learning_rate', lambda rate: rate > 0,
                           message='--learning_rate must be more than 0.')
  flags.DEFINE_integer('testing_percentage', 10,
                       'Images used as a test set (percent).',
                       lower_bound=0, upper_bound=100)
  flags.DEFINE_integer('validation_percentage', 10,
                       'Images used as a validation set (percent).',
                       lower_bound=0, upper_bound=100)
  flags.DEFINE_integer('eval_step_interval', 10,
                       'Evaluate every this many steps (steps).',
                       lower_bound=1)
  flags.DEFINE_integer('train_batch_size', 100, 'Training batch (images).',
                       lower_bound=1)
  flags.DEFINE_integer('test_batch_size', -1,
                       'Test images scored at the end (images; -1: all).')
  flags.DEFINE_integer('validation_batch_size', 100, 'Validation images per '
                       'evaluation (images; -1: all).')
  for name in ('test_batch_size', 'validation_batch_size'):
    flags.register_validator(name, lambda size: size == -1 or size >= 1,
                             message='--%s must be -1 (all) or at least 1.'
                             % name)
  flags.DEFINE_bool('print_misclassified_test_images', False,
                    'List the test images that were misclassified (bool).')
  flags.DEFINE_string('bottleneck_dir', '/tmp/bottleneck',
                      'Cache of bottleneck text files (path).')
  flags.DEFINE_string('final_tensor_name', 'final_result',
                      'Output name of the probabilities in the SavedModel '
                      'signature (name).')
  flags.DEFINE_bool('flip_left_right', False,
                    'Randomly mirror training images (bool).')
  flags.DEFINE_integer('random_crop', 0,
                       'Margin randomly cropped off training images (percent).',
                       lower_bound=0, upper_bound=99)
  flags.DEFINE_integer('random_scale', 0,
                       'Random upscaling of training images (percent).',
                       lower_bound=0)
  flags.DEFINE_integer('random_brightness', 0,
                       'Random brightness change of training images (percent).',
                       lower_bound=0, upper_bound=100)
  flags.DEFINE_string('tfhub_module', features.DEFAULT_MODULE,
                      'Feature-vector model: a TF Hub handle (needs '
                      'tensorflow_hub and internet) or a local SavedModel '
                      'directory (path or URL).')
  flags.DEFINE_string('saved_model_dir', '/tmp/retrained_model',
                      'Where to export the retrained SavedModel (new '
                      'directory path).')
  flags.DEFINE_integer('bottleneck_batch_size', 32, 'Images featurised per '
                       'batch when filling the cache (images).', lower_bound=1)
  flags.DEFINE_integer('random_seed', 0, 'Seed for batch sampling (int).')


def main(argv):
  del argv  # Unused.
  if not FLAGS.image_dir:
    raise RetrainError('--image_dir is required.')
  # Where the model goes is checked before the work that makes it.
  final_layer.check_export_dir(FLAGS.saved_model_dir)
  if FLAGS.output_graph:
    final_layer.check_export_dir(FLAGS.output_graph, '--output_graph')
  image_lists = split.create_image_lists(
      FLAGS.image_dir, FLAGS.testing_percentage, FLAGS.validation_percentage)
  labels = list(image_lists)
  print('Found %d categories: %s' % (len(labels), ', '.join(
      '%s (%d train, %d validation, %d test)' % (
          l, len(e['training']), len(e['validation']), len(e['testing']))
      for l, e in image_lists.items())))
  extractor = features.FeatureExtractor(FLAGS.tfhub_module)
  vectors, stats = bottlenecks.cache_bottlenecks(
      image_lists, FLAGS.image_dir, FLAGS.bottleneck_dir, extractor,
      batch_size=FLAGS.bottleneck_batch_size)
  print('Bottlenecks: %(created)d created, %(reused)d reused from cache, '
        '%(corrupt)d corrupt recomputed, %(unreadable)d unreadable skipped.'
        % stats)
  sets = {c: bottlenecks.stack_set(vectors, image_lists, c)
          for c in ('training', 'validation', 'testing')}
  fresh = None
  options = dict(flip_left_right=FLAGS.flip_left_right,
                 random_crop=FLAGS.random_crop, random_scale=FLAGS.random_scale,
                 random_brightness=FLAGS.random_brightness)
  if distortions.should_distort(**options):
    rng = np.random.RandomState(FLAGS.random_seed)
    paths = [os.path.join(FLAGS.image_dir, n)
             for n in sets['training'][2]]
    print('Distortions on: computing fresh training features every step '
          '(slow).')
    fresh = lambda idx: distortions.distorted_features(
        [paths[i] for i in idx], extractor, options, rng)
  result = final_layer.train(
      sets['training'], sets['validation'], sets['testing'], len(labels),
      how_many_training_steps=FLAGS.how_many_training_steps,
      learning_rate=FLAGS.learning_rate,
      train_batch_size=FLAGS.train_batch_size,
      eval_step_interval=FLAGS.eval_step_interval,
      validation_batch_size=FLAGS.validation_batch_size,
      test_batch_size=FLAGS.test_batch_size,
      summaries_dir=FLAGS.summaries_dir or None,
      fresh_train_batch=fresh, seed=FLAGS.random_seed)
  if FLAGS.print_misclassified_test_images:
    print('=== MISCLASSIFIED TEST IMAGES ===')
    for name, predicted, _ in result['misclassified']:
      print('%70s  %s' % (name, labels[predicted]))
  for directory in [FLAGS.saved_model_dir] + (
      [FLAGS.output_graph] if FLAGS.output_graph else []):
    final_layer.export(extractor, result['weights'], result['biases'], directory,
                   labels, output_labels=FLAGS.output_labels or None,
                   output_name=FLAGS.final_tensor_name)
    print('Saved the retrained model to %s' % directory)
  if FLAGS.output_labels:
    print('Wrote labels to %s' % FLAGS.output_labels)
  return 0


def run():
  """Entry point of `retrain`."""
  entry.run(main, define_flags, graph_mode=False)

