"""Draws the trained MNIST CNN's 32 first-layer feature maps for a picture.

  python mnist_cnn/mnist_feature_maps.py --image=digit.png --output=maps.png

Writes the tutorial's 4x16 grid: conv1's 32 maps before bias + ReLU (rows
1-2) and after (rows 3-4), each scaled to its own range, grey 128 between
tiles. The picture is prepared as mnist_predict.py prepares it.
"""
import os
import sys

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('mnist_cnn.mnist_feature_maps'))

from absl import flags

from cli_support import entry
from mnist_cnn import images
from tutorials_common import files
from tutorials_common import images as common_images
from mnist_cnn import model as mnist_model

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('image', None, 'The picture to look at (a file path).')
  flags.DEFINE_string('checkpoint_dir', '/tmp/mnist_checkpoints',
                      'Folder with the trained checkpoints.')
  flags.DEFINE_string('output', 'feature_maps.png',
                      'Where to write the 4x16 grid (PNG path).')
  flags.DEFINE_integer('zoom', 2, 'Screen pixels per map pixel (factor).')
  flags.mark_flag_as_required('image')


def main(argv=None):  # pylint: disable=unused-argument
  digit = images.to_mnist(images.decode_image_file(FLAGS.image))
  sess, model = mnist_model.restore(FLAGS.checkpoint_dir)
  _, before, after = mnist_model.look_at(sess, model, digit)
  files.write_atomically(FLAGS.output, common_images.encode_png(
      images.feature_map_grid(before, after, FLAGS.zoom)))
  print('Feature maps written to %s' % FLAGS.output)


def run():
  entry.run(main, define_flags)

