"""Classifies a picture of a digit with the trained MNIST CNN.

  python mnist_cnn/mnist_predict.py --image=digit.png --checkpoint_dir=/tmp/mnist_checkpoints

Takes a PNG, JPEG, GIF, BMP or WebP of any size, dark-on-light or
light-on-dark, makes it look like an MNIST digit (cropped, 20x20, centred by
mass in 28x28) and prints the 10 probabilities and the predicted digit.
Given --chart=probabilities.png (or .svg), it also draws the prepared digit
beside a bar chart of its probabilities there (with matplotlib: pip install
-e '.[charts]'). A model trained with the tutorial's schedule reads clear
hand-drawn digits (docs/performance.md has its accuracy); most of a run is
starting TensorFlow.
"""
import os
import sys

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('mnist_cnn.mnist_predict'))

from absl import flags

from cli_support import entry
from mnist_cnn import images
from tutorials_common import plots
from mnist_cnn import model as mnist_model

FLAGS = flags.FLAGS
DIGITS = [str(digit) for digit in range(10)]


def define_flags():
  flags.DEFINE_string('image', None, 'The picture to classify (a file path).')
  flags.DEFINE_string('checkpoint_dir', '/tmp/mnist_checkpoints',
                      'Folder with the trained checkpoints.')
  flags.DEFINE_string('chart', '',
                      'Also draw the digit and its probabilities into this '
                      'PNG or SVG file (a path; needs matplotlib). Empty: no '
                      'chart.')
  flags.mark_flag_as_required('image')


def main(argv=None):  # pylint: disable=unused-argument
  if FLAGS.chart:
    plots.check_chart_path(FLAGS.chart)
    plots.require_matplotlib()
  digit = images.to_mnist(images.decode_image_file(FLAGS.image))
  sess, model = mnist_model.restore(FLAGS.checkpoint_dir)
  probabilities, _, _ = mnist_model.look_at(sess, model, digit)
  for label, p in enumerate(probabilities):
    print('%d: %.4f' % (label, p))
  print('Prediction: %d' % probabilities.argmax())
  if FLAGS.chart:
    figure = plots.prediction_figure(
        [(digit.reshape(28, 28), probabilities,
          'the digit as the network sees it (28x28)')],
        DIGITS)
    plots.save_figure(figure, FLAGS.chart)
    print('Bar chart written to %s' % FLAGS.chart)


def run():
  entry.run(main, define_flags)

