"""Lists image folders and splits files into training/validation/testing.

A file's set is decided by a stable hash of its name (sha1 of the path with
any `_nohash_...` suffix removed), so it keeps its set across runs and as
folders grow.
"""
import collections
import hashlib
import logging
import os
import re

from image_retraining.errors import RetrainError

MAX_NUM_IMAGES_PER_CLASS = 2 ** 27 - 1  # ~134M
MIN_IMAGES_WARNING = 20


def is_image_file(path):
  """True when the file's first bytes are a PNG or JPEG signature."""
  try:
    with open(path, 'rb') as f:
      head = f.read(8)
  except OSError:
    return False
  return head.startswith(b'\x89PNG\r\n\x1a\n') or head.startswith(b'\xff\xd8')


def label_name(dir_name):
  """Folder name -> label: lower-cased, non-alphanumerics to spaces."""
  return re.sub(r'[^a-z0-9]+', ' ', dir_name.lower())


def which_set(file_name, validation_percentage, testing_percentage):
  """Returns 'training', 'validation' or 'testing' for a file name."""
  hash_name = re.sub(r'_nohash_.*$', '', file_name)
  hashed = hashlib.sha1(hash_name.encode('utf-8')).hexdigest()
  percentage_hash = ((int(hashed, 16) % (MAX_NUM_IMAGES_PER_CLASS + 1)) *
                     (100.0 / MAX_NUM_IMAGES_PER_CLASS))
  if percentage_hash < validation_percentage:
    return 'validation'
  if percentage_hash < (testing_percentage + validation_percentage):
    return 'testing'
  return 'training'


def create_image_lists(image_dir, testing_percentage=10,
                       validation_percentage=10):
  """Builds {label: {'dir', 'training', 'validation', 'testing'}} (sorted).

  File lists hold base names relative to `image_dir/dir`. Non-image files and
  empty folders are skipped with a warning; fewer than two usable categories
  or a category with no training image raise RetrainError.
  """
  if not os.path.isdir(image_dir):
    raise RetrainError("Image directory '%s' not found." % image_dir)
  if not (0 <= testing_percentage and 0 <= validation_percentage and
          testing_percentage + validation_percentage < 100):
    raise RetrainError('testing_percentage + validation_percentage must be '
                       'in [0, 100), got %s + %s' %
                       (testing_percentage, validation_percentage))
  result = collections.OrderedDict()
  sub_dirs = sorted(d for d in os.listdir(image_dir)
                    if os.path.isdir(os.path.join(image_dir, d)))
  for dir_name in sub_dirs:
    full_dir = os.path.join(image_dir, dir_name)
    names, skipped = [], []
    for name in sorted(os.listdir(full_dir)):
      path = os.path.join(full_dir, name)
      if not os.path.isfile(path):
        continue
      (names if is_image_file(path) else skipped).append(name)
    if skipped:
      logging.warning("Skipping %d file(s) in '%s' that are not PNG/JPEG "
                      "images, e.g. %s", len(skipped), full_dir, skipped[0])
    if not names:
      logging.warning("No PNG/JPEG images in '%s': skipping this folder.",
                      full_dir)
      continue
    if len(names) < MIN_IMAGES_WARNING:
      logging.warning("Folder '%s' has only %d images; accuracy will be poor "
                      "and some sets may be empty.", full_dir, len(names))
    label = label_name(dir_name)
    if label in result:
      raise RetrainError("Folders '%s' and '%s' map to the same label '%s'." %
                         (result[label]['dir'], dir_name, label))
    sets = {'training': [], 'validation': [], 'testing': []}
    for name in names:
      sets[which_set(name, validation_percentage, testing_percentage)].append(
          name)
    result[label] = dict(dir=dir_name, **sets)
  if not result:
    raise RetrainError("No PNG/JPEG images found in any sub-folder of '%s' "
                       "(one sub-folder per category is expected)." % image_dir)
  if len(result) < 2:
    raise RetrainError("Only one category ('%s') found in '%s'; at least two "
                       "are needed to train a classifier." %
                       (list(result)[0], image_dir))
  result = collections.OrderedDict(sorted(result.items()))
  for label, lists in result.items():
    if not lists['training']:
      raise RetrainError(
          "Category '%s' has no training images (%d images in all, the hash "
          "split put them in validation/testing); add more images." %
          (label, len(lists['validation']) + len(lists['testing'])))
  return result


def image_path(image_lists, image_dir, label, category, index):
  """Full path of image `index` of `label` in set `category`."""
  entry = image_lists[label]
  return os.path.join(image_dir, entry['dir'], entry[category][index])
