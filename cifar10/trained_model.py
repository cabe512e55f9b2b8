"""A trained CIFAR-10 checkpoint, restored, classifying pixels.

What cifar10_predict.py and cifar10_export.py share:

* `decode_images` turns encoded image files (anything
  tutorials_common.images decodes) into float32 [N, 32, 32, 3] pixels 0-255,
  the size of a CIFAR-10 image, with the network's one resize rule
  (`tutorials_common.images.resize_for_cifar10`). cifar10_predict uses it in
  its graph, cifar10_export inside the SavedModel's `serving_default`; a
  picture of more than tutorials_common.images.MAX_PIXELS pixels fails its
  assertion there, from the header, before it is decoded.
* `probabilities` is the evaluation preprocessing of cifar10_eval.py
  (`cifar10_input.eval_images`: central 24x24 crop and standardisation) and
  `cifar10.class_probabilities`, on such pixels; `features` gives the
  network's 192-wide local4 activations of the same pass.
* `require_checkpoint`, `class_names` and `restore` find and load what a
  trained model needs, with a one-line error for each way that can fail.
"""
import os

import tensorflow as tf2
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import cifar10_input
from tutorials_common import checkpoints
from tutorials_common import images
from tutorials_common.errors import UsageError
from tutorials_common.errors import one_line

CLASS_NAMES = cifar10_input.CLASS_NAMES
META_FILE = 'batches.meta.txt'
SIZE = cifar10_input.ORIGINAL_SIZE
FEATURES = 192  # The width of local4, the layer before the classes.

RAW_WEIGHTS_NOTE = ('checkpoint %s has no moving averages of the weights; '
                    'using its raw weights.')

CheckpointError = checkpoints.CheckpointError

# The name scope `probabilities` builds the network in, so that its local4
# activations have a name of our own choosing.
_SCOPE = 'network'


class ClassNamesError(UsageError):
  """A batches.meta.txt that does not hold ten class names."""


def require_checkpoint(checkpoint_dir, flag='--checkpoint_dir'):
  """The newest checkpoint in checkpoint_dir (or checkpoint_dir itself, if it
  is a checkpoint's path prefix such as /tmp/cifar10_train/model.ckpt-1000),
  or a CheckpointError saying how to train one, or naming the variables
  that are not finite in one saved after training diverged."""
  found = checkpoints.require_checkpoint(
      checkpoint_dir, flag=flag,
      how_to_train='cifar10_train --train_dir=%s, or python '
      'cifar10/cifar10_train.py in a checkout' % checkpoint_dir)
  checkpoints.require_finite(found, what='use it')
  return found


def checkpoint_dtype(checkpoint_path):
  """The dtype of the checkpoint's weights (float16 after --use_fp16)."""
  try:
    dtypes = tf.train.load_checkpoint(checkpoint_path).get_variable_to_dtype_map()
  except (tf.errors.OpError, ValueError) as e:
    raise CheckpointError('cannot read checkpoint %s: %s' %
                          (checkpoint_path, one_line(e)))
  if 'conv1/weights' not in dtypes:
    raise CheckpointError(
        'checkpoint %s is not a CIFAR-10 model checkpoint (it has no '
        'conv1/weights).' % checkpoint_path)
  return tf.as_dtype(dtypes['conv1/weights'])


def class_names(data_dir):
  """(names, file): the names in data_dir's batches.meta.txt if there is one
  (in cifar-10-batches-bin/ or data_dir itself), else (CLASS_NAMES, None)."""
  if data_dir:
    for path in (os.path.join(data_dir, cifar10_input.BATCHES_DIR, META_FILE),
                 os.path.join(data_dir, META_FILE)):
      if os.path.isfile(path):
        try:
          with open(path, 'rb') as f:
            text = f.read().decode('utf-8')
        except (IOError, OSError, UnicodeDecodeError) as e:
          raise ClassNamesError('cannot read class names from %s: %s' %
                                (path, e))
        names = tuple(line.strip() for line in text.splitlines()
                      if line.strip())
        if len(names) != cifar10_input.NUM_CLASSES:
          raise ClassNamesError(
              '%s holds %d class names, one a line; a CIFAR-10 model has %d.'
              % (path, len(names), cifar10_input.NUM_CLASSES))
        return names, path
  return CLASS_NAMES, None


def decode_image(contents):
  """One encoded image (scalar string) -> float32 [32, 32, 3], 0-255."""
  return images.resize_for_cifar10(images.decode(contents)[None])[0]


def decode_images(encoded):
  """A 1-D string tensor of encoded images -> float32 [N, 32, 32, 3], 0-255."""
  return tf2.map_fn(decode_image, encoded,
                    fn_output_signature=tf2.TensorSpec([SIZE, SIZE, 3],
                                                       tf2.float32))


def probabilities(pixels, flip=False, dtype=tf.float32, crops=1):
  """float32 [N, 10] softmax of float pixels 0-255 [N, 32, 32, 3].

  The evaluation preprocessing of cifar10_eval.py (with crops=5, its five
  crops), then the network; builds the network's variables (restore them
  with `saver`).
  """
  images_24 = cifar10_input.eval_images(pixels, crops)
  # A --use_fp16 checkpoint holds float16 weights, read as such.
  precision = 'float16' if dtype == tf.float16 else 'float32'
  with tf.name_scope(_SCOPE):
    return cifar10.class_probabilities(images_24, flip, precision)


def features(pixels):
  """float32 [N, 192]: the local4 activations of `pixels` in the network
  `probabilities(pixels, ...)` built in this graph: of the central crops
  of the images themselves, not of their other views (mirror images with
  flip, corner crops with crops=5)."""
  local4 = tf.get_default_graph().get_tensor_by_name(
      '%s/local4/local4:0' % _SCOPE)
  return tf.cast(local4[:tf.shape(pixels)[0]], tf.float32)


def saver(checkpoint_path):
  """(tf.train.Saver, uses_averages) for the network built in this graph:
  the moving averages of the weights, or the raw weights when the checkpoint
  has none."""
  mapping, uses_averages = cifar10.variables_to_restore(checkpoint_path)
  return tf.train.Saver(mapping), uses_averages


def restore(sess, the_saver, checkpoint_path):
  """Restores, turning a checkpoint of another model into CheckpointError."""
  try:
    the_saver.restore(sess, checkpoint_path)
  except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError,
          tf.errors.DataLossError) as e:
    raise CheckpointError('cannot restore %s as the CIFAR-10 model: %s' %
                          (checkpoint_path, one_line(e)))
