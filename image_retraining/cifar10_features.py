"""Exports a trained CIFAR-10 checkpoint as an image feature-vector SavedModel.

The SavedModel follows the TF Hub image feature-vector convention, so it can
be passed to `retrain --tfhub_module`: float32 images [N, H, W, 3] in [0, 1]
of any size are resized to 32x32, centrally cropped to the model's 24x24 (as
CIFAR-10 evaluation does) and per-image standardised; the output is the
192-wide `local4` activation. The moving-average (shadow) values of the
weights are exported, as cifar10_eval restores them.
"""
import os

import tensorflow as tf
import tensorflow.compat.v1 as tf1

from image_retraining.errors import RetrainError

CIFAR_SIZE = 32


def _model():
  from cifar10 import cifar10  # pylint: disable=g-import-not-at-top
  return cifar10


def shadow_values(checkpoint):
  """{variable name: value} of the model's EMA shadow values in a checkpoint."""
  cifar10 = _model()
  try:
    reader = tf.train.load_checkpoint(checkpoint)
  except Exception as e:  # pylint: disable=broad-except
    raise RetrainError("Cannot read checkpoint '%s': %s" %
                       (checkpoint, str(e).splitlines()[0]))
  with tf1.Graph().as_default():
    images = tf1.placeholder(tf1.float32,
                             [None, cifar10.IMAGE_SIZE, cifar10.IMAGE_SIZE, 3])
    cifar10.inference(images)
    mapping = tf1.train.ExponentialMovingAverage(
        cifar10.MOVING_AVERAGE_DECAY).variables_to_restore()
  values, missing = {}, []
  for ckpt_name, var in mapping.items():
    name = var.op.name
    if name.startswith('global_step'):
      continue
    if reader.has_tensor(ckpt_name):
      values[name] = reader.get_tensor(ckpt_name)
    else:
      missing.append(ckpt_name)
  if missing:
    raise RetrainError("Checkpoint '%s' is not a CIFAR-10 model checkpoint "
                       "(missing %s)." % (checkpoint, missing[0]))
  return values


class Cifar10Features(tf.Module):
  """Image feature vectors from the CIFAR-10 tutorial model's local4 layer."""

  def __init__(self, values):
    super(Cifar10Features, self).__init__()
    self.model_variables = {
        name: tf.Variable(value, trainable=False, name=name.replace('/', '_'))
        for name, value in sorted(values.items())}

  @tf.function(input_signature=[
      tf.TensorSpec([None, None, None, 3], tf.float32, name='images')])
  def __call__(self, images):
    cifar10 = _model()
    size = cifar10.IMAGE_SIZE
    images = tf.image.resize(images, (CIFAR_SIZE, CIFAR_SIZE))
    images = tf.image.resize_with_crop_or_pad(images, size, size)
    images = tf.image.per_image_standardization(images * 255.0)
    variables = self.model_variables

    def getter(*args, **kwargs):  # custom getter: the exported variables
      del args
      return variables[kwargs['name']]

    with tf1.variable_scope(tf1.get_variable_scope(), custom_getter=getter,
                            auxiliary_name_scope=False):
      cifar10.inference(images)
    graph = tf1.get_default_graph()
    local4 = [op for op in graph.get_operations()
              if op.name.endswith('local4/local4')]
    return local4[-1].outputs[0]


def export(checkpoint_dir, export_dir):
  """Exports the latest checkpoint of checkpoint_dir (or a checkpoint path)."""
  checkpoint = checkpoint_dir
  if os.path.isdir(checkpoint_dir):
    checkpoint = tf.train.latest_checkpoint(checkpoint_dir)
    if checkpoint is None:
      raise RetrainError("No checkpoint in '%s' (train one with "
                         "cifar10/cifar10_train.py)." % checkpoint_dir)
  if os.path.exists(export_dir) and os.listdir(export_dir):
    raise RetrainError("Export directory '%s' exists and is not empty." %
                       export_dir)
  module = Cifar10Features(shadow_values(checkpoint))
  tf.saved_model.save(module, export_dir,
                      signatures={'serving_default': module.__call__})
  return checkpoint
