"""Exports a trained CIFAR-10 model for TensorFlow Serving and TensorFlow Lite.

Run it (from this folder, from the repository root as
cifar10/cifar10_export.py, or as the console script cifar10_export):

  python cifar10_export.py --checkpoint_dir=/tmp/cifar10_train \
      --export_dir=/tmp/cifar10_model [--tflite [--quantize]]

Writes a TensorFlow 2 SavedModel of the newest checkpoint: the moving averages
of the weights (as cifar10_eval.py restores them) are baked in as constants,
and the evaluation preprocessing is inside the model, so plain
`tf.saved_model.load(dir)` uses it in any process, without this project.
Three signatures, each for any number N of images:

* `serving_default`: `image_bytes`, a 1-D string tensor of encoded images
  (PNG, JPEG, GIF, BMP or WebP bytes of any size, resized to 32x32 as
  cifar10_predict does), the TensorFlow Serving convention;
* `predict_images`: `images`, float32 [N, 32, 32, 3] pixel values 0-255;
* `feature_vector`: `images`, float32 [N, H, W, 3] of any size with values
  in [0, 1] (TF Hub's image feature-vector convention), resized the same
  way; returns `feature_vector`, the network's 192-wide local4 activations.
  `retrain --tfhub_module=DIR` uses it (export_cifar10_features writes an
  export for that alone).

The first two return `probabilities` (float32 [N, 10]), `classes` (int64
[N]) and `class_names` (string [N]). `saved_model_cli show --dir DIR --all`
lists the three signatures.

--tflite also writes DIR/model.tflite (input float32 [N, 32, 32, 3], 0-255;
output the 10 probabilities) and --quantize DIR/model_quantized.tflite
beside it, with dynamic-range (8-bit weight) quantisation.

The export is written to a temporary folder beside --export_dir and renamed
into place at the end, so a failed or interrupted run never leaves a
half-written export. An existing --export_dir is refused unless --overwrite,
which replaces only an earlier export (a folder of nothing else).
"""
import os
import sys

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('cifar10.cifar10_export'))

from cli_support import entry
from tutorials_common import files
from tutorials_common import images as images_lib
from tutorials_common.errors import UsageError
from absl import flags
from absl import logging
import tensorflow as tf2
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import kernels
from cifar10 import trained_model

FLAGS = flags.FLAGS

TFLITE_FILE = 'model.tflite'
QUANTIZED_FILE = 'model_quantized.tflite'
# The signature retraining (retrain --tfhub_module) uses.
FEATURE_SIGNATURE = 'feature_vector'
_INPUT = 'pixels'
_OUTPUT = 'probabilities'
_FEATURES = 'feature_vector'


def define_flags():
  flags.DEFINE_string('checkpoint_dir', '/tmp/cifar10_train',
                      'Folder with the trained checkpoints (the trainer\'s '
                      '--train_dir; the newest is exported), or one '
                      'checkpoint\'s path prefix.')
  flags.DEFINE_string('export_dir', '/tmp/cifar10_model',
                      'Folder to create for the SavedModel (path); it must '
                      'not exist yet, unless --overwrite.')
  flags.DEFINE_boolean('overwrite', False,
                       'Replace an earlier export in --export_dir '
                       '(true/false); the old one is removed only once the '
                       'new one is complete, and a folder holding anything '
                       'else is never replaced.')
  flags.DEFINE_boolean('tflite', False,
                       'Also write %s, float32 weights, into --export_dir '
                       '(true/false).' % TFLITE_FILE)
  flags.DEFINE_boolean('quantize', False,
                       'Also write %s, with dynamic-range quantised 8-bit '
                       'weights, into --export_dir (true/false); implies '
                       '--tflite.' % QUANTIZED_FILE)
  flags.DEFINE_boolean('eval_flip', False,
                       'Bake cifar10_eval.py --eval_flip into the model: '
                       'average the softmax outputs of each image and its '
                       'mirror image (true/false); twice the compute.')
  flags.DEFINE_enum('eval_crops', '1', ['1', '5'],
                    'Bake cifar10_eval.py --eval_crops into the model '
                    '(crops): 5 averages the softmax outputs of the central '
                    'and the four corner 24x24 crops; five times the '
                    'compute.')
  flags.DEFINE_string('data_dir', cifar10.DEFAULT_DATA_DIR,
                      'CIFAR-10 data folder (path); only its batches.meta.txt '
                      'is read, for the class names the model returns. '
                      'Without one, the ten standard names are used.')


def frozen_graph(checkpoint_path, flip=False, crops=1):
  """(GraphDef, uses_averages): pixels (float32 [N, 32, 32, 3], 0-255) ->
  probabilities and the local4 feature vectors, through the evaluation
  preprocessing and the network, with the checkpoint's weights (its moving
  averages when it has them) as constants."""
  dtype = trained_model.checkpoint_dtype(checkpoint_path)
  graph = tf.Graph()
  # TensorFlow's ops only, so that the export loads without the fused kernel.
  with graph.as_default(), kernels.portable():
    pixels = tf.placeholder(tf.float32, [None, trained_model.SIZE,
                                         trained_model.SIZE, 3], name=_INPUT)
    tf.identity(trained_model.probabilities(pixels, flip, dtype, crops),
                name=_OUTPUT)
    tf.identity(trained_model.features(pixels), name=_FEATURES)
    saver, uses_averages = trained_model.saver(checkpoint_path)
    with tf.Session(graph=graph) as sess:
      trained_model.restore(sess, saver, checkpoint_path)
      graph_def = tf.graph_util.convert_variables_to_constants(
          sess, graph.as_graph_def(), [_OUTPUT, _FEATURES])
  for node in graph_def.node:
    # The network's local response normalisation has a custom gradient; the
    # export is for inference only, and SavedModel cannot save that gradient
    # for a frozen graph.
    if '_gradient_op_type' in node.attr:
      del node.attr['_gradient_op_type']
  return graph_def, uses_averages


class CifarModel(object):
  """The exported model's functions: its signatures and the TensorFlow Lite
  model's function, all calling one frozen network.

  Only `signatures` are saved (on an otherwise empty object), so
  `saved_model_cli show --all` lists them and nothing else.
  """

  def __init__(self, graph_def, names):
    names = tf2.constant(list(names))
    pixel_spec = tf2.TensorSpec([None, trained_model.SIZE, trained_model.SIZE,
                                 3], tf2.float32, name='images')

    def import_network(pixels):
      return tf.import_graph_def(
          graph_def, input_map={_INPUT + ':0': pixels},
          return_elements=[_OUTPUT + ':0', _FEATURES + ':0'], name='network')

    network = tf.wrap_function(import_network, [pixel_spec])

    def outputs(pixels):
      probabilities = network(pixels)[0]
      classes = tf2.argmax(probabilities, axis=1, output_type=tf2.int64)
      return {'probabilities': probabilities,
              'classes': classes,
              'class_names': tf2.gather(names, classes)}

    @tf2.function(input_signature=[tf2.TensorSpec([None], tf2.string,
                                                  name='image_bytes')])
    def serve_encoded(image_bytes):
      return outputs(trained_model.decode_images(image_bytes))

    @tf2.function(input_signature=[pixel_spec])
    def predict_images(images):
      return outputs(images)

    @tf2.function(input_signature=[tf2.TensorSpec([None, None, None, 3],
                                                  tf2.float32, name='images')])
    def feature_vector(images):
      """TF Hub's image feature-vector convention: float images in [0, 1] of
      any size, resized as the other signatures resize."""
      pixels = images_lib.resize_for_cifar10(images * 255.0)
      return {'feature_vector': network(pixels)[1]}

    @tf2.function(input_signature=[pixel_spec])
    def probabilities(images):
      return network(images)[0]

    self.signatures = {
        'serving_default': serve_encoded.get_concrete_function(),
        'predict_images': predict_images.get_concrete_function(),
        FEATURE_SIGNATURE: feature_vector.get_concrete_function()}
    # The TensorFlow Lite model's function: pixels to the probabilities.
    self.probabilities = probabilities.get_concrete_function()
    self.root = tf2.Module()


def tflite_bytes(model, quantize=False):
  """A TensorFlow Lite flatbuffer of model.probabilities (builtin ops only)."""
  converter = tf2.lite.TFLiteConverter.from_concrete_functions(
      [model.probabilities], model.root)
  if quantize:
    converter.optimizations = [tf2.lite.Optimize.DEFAULT]
  return converter.convert()


def write_export(model, folder, tflite=False, quantize=False):
  """Writes the SavedModel (and .tflite files) into the new folder."""
  tf2.saved_model.save(model.root, folder, signatures=model.signatures)
  written = [folder]
  for wanted, quantized, name in ((tflite or quantize, False, TFLITE_FILE),
                                  (quantize, True, QUANTIZED_FILE)):
    if wanted:
      path = os.path.join(folder, name)
      with open(path, 'wb') as f:
        f.write(tflite_bytes(model, quantized))
      written.append(path)
  return written


def folder_bytes(folder):
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(folder) for name in names)


# What an export of this command holds: the SavedModel's files and folders
# and the TensorFlow Lite models. --overwrite replaces only such a folder.
EXPORT_NAMES = frozenset(['saved_model.pb', 'fingerprint.pb', 'variables',
                          'assets', TFLITE_FILE, QUANTIZED_FILE])


def check_export_dir(export_dir, overwrite=False):
  """Raises a UsageError unless export_dir may be written: new, empty, or
  (with overwrite) an earlier export of this command, nothing else in it."""
  if not os.path.lexists(export_dir):
    return
  if not os.path.isdir(export_dir) or os.path.islink(export_dir):
    raise UsageError('--export_dir %s exists and is not a folder; it is '
                     'not replaced even with --overwrite.' % export_dir)
  inside = sorted(os.listdir(export_dir))
  if not inside:
    return
  if not overwrite:
    raise UsageError('--export_dir %s already exists: pass --overwrite to '
                     'replace it, or name a new folder.' % export_dir)
  others = [name for name in inside if name not in EXPORT_NAMES]
  if others or 'saved_model.pb' not in inside:
    raise UsageError(
        '--export_dir %s is not an export of cifar10_export (it holds %s): '
        '--overwrite replaces only an earlier export; name a new folder.'
        % (export_dir, ', '.join((others or inside)[:3]) +
           (' ...' if len(others or inside) > 3 else '')))


def export(checkpoint_path, export_dir, names, flip=False, tflite=False,
           quantize=False, overwrite=False, crops=1):
  """Exports into export_dir atomically; returns (uses_averages, sizes), sizes
  a list of (what, bytes)."""
  export_dir = os.path.abspath(export_dir)
  check_export_dir(export_dir, overwrite)
  with files.staged_folder(export_dir, 'the export') as new:
    graph_def, uses_averages = frozen_graph(checkpoint_path, flip, crops)
    model = CifarModel(graph_def, names)
    write_export(model, new, tflite, quantize)
    sizes = [('SavedModel', folder_bytes(new))]
    for name in (TFLITE_FILE, QUANTIZED_FILE):
      if os.path.exists(os.path.join(new, name)):
        sizes.append((name, os.path.getsize(os.path.join(new, name))))
        sizes[0] = ('SavedModel', sizes[0][1] - sizes[-1][1])
  return uses_averages, sizes


def main(argv):
  if len(argv) > 1:
    raise UsageError('unexpected argument %s: cifar10_export takes only '
                     'flags.' % argv[1])
  # TensorFlow's INFO lines (each file it writes) and the deprecation notice
  # of the TF1 freezing API would bury the command's own summary.
  tf.get_logger().setLevel('ERROR')
  logging.set_verbosity(logging.WARNING)
  check_export_dir(os.path.abspath(FLAGS.export_dir), FLAGS.overwrite)
  names, _ = trained_model.class_names(FLAGS.data_dir)
  checkpoint_path = trained_model.require_checkpoint(FLAGS.checkpoint_dir)
  uses_averages, sizes = export(checkpoint_path, FLAGS.export_dir, names,
                                FLAGS.eval_flip, FLAGS.tflite, FLAGS.quantize,
                                FLAGS.overwrite, int(FLAGS.eval_crops))
  if not uses_averages:
    sys.stderr.write('cifar10_export: %s\n' %
                     (trained_model.RAW_WEIGHTS_NOTE % checkpoint_path))
  print('Exported %s (%s) to %s' % (
      checkpoint_path,
      'moving averages of the weights' if uses_averages else 'raw weights',
      os.path.abspath(FLAGS.export_dir)))
  for what, size in sizes:
    print('  %s: %d bytes' % (what, size))
  return 0


def run():
  entry.run(main, define_flags, graph_mode=False)

