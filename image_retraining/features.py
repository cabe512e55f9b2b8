"""Loads an image feature-vector model (local SavedModel or TF Hub handle).

The model maps a float32 batch [N, H, W, 3] with values in [0, 1] to a
float32 batch of feature vectors [N, D] (TF Hub image feature-vector API).
A SavedModel with a `feature_vector` signature (cifar10_export's) is called
through it; otherwise the model itself, or its serving_default signature.
"""
import os
import re

import tensorflow as tf

from image_retraining.errors import RetrainError
from tutorials_common import images
from tutorials_common.errors import one_line

DEFAULT_MODULE = 'https://tfhub.dev/google/imagenet/inception_v3/feature_vector/3'


def module_slug(handle):
  """Short file-system-safe name of a module, used in bottleneck names."""
  return re.sub(r'[^A-Za-z0-9]+', '_', handle.rstrip('/'))[-80:].strip('_')


class FeatureExtractor(object):
  """Wraps a loaded feature-vector model; `image_size` is (H, W) or None."""

  def __init__(self, handle):
    self.handle = handle
    self.module = _load(handle)
    self.image_size = _static_size(self.module)

  def __call__(self, images):
    """images: float32 [N, H, W, 3] in [0, 1] -> numpy [N, D]."""
    images = tf.convert_to_tensor(images, tf.float32)
    if self.image_size is not None:
      images = tf.image.resize(images, self.image_size)
    out = _call(self.module, images)
    return out.numpy()


def _load(handle):
  if os.path.isdir(handle):
    try:
      return tf.saved_model.load(handle)
    except Exception as e:  # pylint: disable=broad-except
      raise RetrainError("Cannot load SavedModel '%s': %s" %
                         (handle, one_line(e)))
  if not re.match(r'^[a-z]+://', handle) and not handle.startswith('@'):
    raise RetrainError("--tfhub_module '%s' is neither a SavedModel directory "
                       "nor a TF Hub URL." % handle)
  try:
    import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise RetrainError(
        "--tfhub_module '%s' is a TF Hub handle but tensorflow_hub is not "
        "installed (pip install tensorflow_hub, extra 'hub'); or pass a local "
        "SavedModel directory, e.g. one made by "
        "export_cifar10_features or cifar10_export." % handle)
  try:
    return hub.load(handle)
  except Exception as e:  # pylint: disable=broad-except
    raise RetrainError("Cannot load TF Hub module '%s' (offline or bad "
                       "handle?): %s" % (handle, one_line(e)))


# The signature of a cifar10_export SavedModel that gives feature vectors.
FEATURE_SIGNATURE = 'feature_vector'


def _signature(module):
  """The signature to call: feature_vector when the model has one (a
  cifar10_export SavedModel), else serving_default (None without either)."""
  signatures = getattr(module, 'signatures', None) or {}
  return signatures.get(FEATURE_SIGNATURE, signatures.get('serving_default'))


def _has_feature_signature(module):
  return FEATURE_SIGNATURE in (getattr(module, 'signatures', None) or {})


def _call(module, images):
  if callable(module) and not _has_feature_signature(module):
    out = module(images)
  else:
    fn = _signature(module)
    kwargs = fn.structured_input_signature[1]
    out = fn(**{list(kwargs)[0]: images}) if kwargs else fn(images)
  if isinstance(out, dict):
    out = out.get('feature_vector', out.get('default', list(out.values())[0]))
  return out


def _static_size(module):
  """(H, W) when the model's input signature fixes them, else None."""
  fns = []
  if hasattr(module, '__call__') and hasattr(module.__call__,
                                               'concrete_functions'):
    fns = list(module.__call__.concrete_functions)
  if (not fns or _has_feature_signature(module)) and _signature(module):
    fns = [_signature(module)]
  for fn in fns:
    specs = tf.nest.flatten(fn.structured_input_signature)
    for spec in specs:
      shape = getattr(spec, 'shape', None)
      if shape is not None and shape.rank == 4:
        h, w = shape[1], shape[2]
        if h is not None and w is not None:
          return (int(h), int(w))
  return None


def decode_image_file(path):
  """Reads an image file (any format tutorials_common.images decodes) into
  float32 [H, W, 3] in [0, 1], upright as its EXIF orientation says.

  Raises RetrainError on an unreadable image, or one of more than
  tutorials_common.images.MAX_PIXELS pixels (found before decoding it).
  """
  try:
    pixels = images.read_image_file(path)
  except images.ImageError as e:
    raise RetrainError(str(e))
  return tf.image.convert_image_dtype(pixels, tf.float32)
