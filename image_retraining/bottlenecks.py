"""Caches one feature vector ("bottleneck") per image and module on disk.

Layout: BOTTLENECK_DIR/<category folder>/<image file>_<module slug>.txt, one
line of comma-separated floats. A re-run reuses the files; an unparsable file
is recomputed.
"""
import logging
import os
import sys
import time

import numpy as np
import tensorflow as tf

from image_retraining import features
from image_retraining.errors import RetrainError
from tutorials_common import files


def bottleneck_path(bottleneck_dir, image_lists, label, name, module_handle):
  entry = image_lists[label]
  return os.path.join(bottleneck_dir, entry['dir'],
                      name + '_' + features.module_slug(module_handle) + '.txt')


def read_bottleneck(path):
  """Returns the cached vector or None when missing/corrupt."""
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      values = [float(x) for x in f.read().strip().split(',')]
  except (ValueError, OSError):
    return None
  with np.errstate(over='ignore'):  # past float32 becomes inf, refused here
    vector = np.asarray(values, np.float32)
  # 'nan', 'inf' and numbers past float32 (1e39) parse, but no extractor
  # wrote them: the file is damaged, and training on it would give NaNs.
  if not np.isfinite(vector).all():
    return None
  return vector


def write_bottleneck(path, vector):
  """Writes one cached bottleneck, whole or not at all (files.WriteError)."""
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
  except OSError as e:
    raise files.cannot_write(path, e) from None
  # 9 significant digits: the fewest that bring every float32 back exactly
  # (8 changed about one value in 200). Not fsynced: the wait costs more than
  # the write, and read_bottleneck recomputes a file a crash damaged.
  files.write_atomically(path, ','.join('%.9g' % v for v in vector),
                         durable=False)


def cache_bottlenecks(image_lists, image_dir, bottleneck_dir, extractor,
                      batch_size=32, out=None):
  """Makes sure every image has a cached bottleneck; returns the vectors.

  Returns (vectors, stats): vectors maps (label, set, name) -> np.ndarray;
  stats has 'created', 'reused', 'corrupt', 'unreadable'. Unreadable images are
  skipped with a warning and removed from `image_lists`.
  """
  out = out or sys.stdout  # The current one, not the one at import.
  vectors, todo = {}, []
  stats = dict(created=0, reused=0, corrupt=0, unreadable=0)
  for label, entry in image_lists.items():
    for category in ('training', 'validation', 'testing'):
      for name in entry[category]:
        path = bottleneck_path(bottleneck_dir, image_lists, label, name,
                               extractor.handle)
        vector = read_bottleneck(path)
        if vector is None:
          if os.path.exists(path):
            logging.warning("Corrupt bottleneck file '%s': recomputing.", path)
            stats['corrupt'] += 1
          todo.append((label, category, name, path))
        else:
          vectors[(label, category, name)] = vector
          stats['reused'] += 1
  out.write('Reused %d cached bottlenecks, computing %d.\n' %
            (stats['reused'], len(todo)))
  start = time.time()
  bad = []
  for begin in range(0, len(todo), batch_size):
    batch = todo[begin:begin + batch_size]
    images, keep = [], []
    for item in batch:
      image_file = os.path.join(image_dir, image_lists[item[0]]['dir'],
                                item[2])
      try:
        images.append(features.decode_image_file(image_file))
        keep.append(item)
      except RetrainError as e:
        logging.warning('%s: skipping it.', e)
        bad.append(item)
    for group_items, group_images in _group_by_shape(keep, images,
                                                     extractor.image_size):
      result = extractor(np.stack(group_images))
      for item, vector in zip(group_items, result):
        try:
          write_bottleneck(item[3], vector)
        except files.WriteError as e:
          raise files.WriteError(
              '%s The %d bottlenecks cached before it are kept: fix that, '
              'then run the same command to go on from them.' %
              (e, stats['created'] + stats['reused'])) from None
        vectors[item[:3]] = vector
        stats['created'] += 1
    done = min(begin + batch_size, len(todo))
    out.write('%d/%d bottlenecks computed (%.1f images/s)\n' %
              (done, len(todo), done / max(time.time() - start, 1e-6)))
    out.flush()
  stats['unreadable'] = len(bad)
  for label, category, name, _ in bad:
    image_lists[label][category].remove(name)
  for label, entry in image_lists.items():
    if not entry['training']:
      raise RetrainError("Category '%s' has no readable training images." %
                         label)
  return vectors, stats


def _group_by_shape(items, images, image_size):
  """Batches images that can be stacked (same shape, or resized to size)."""
  groups = {}
  for item, image in zip(items, images):
    if image_size is not None:
      image = tf.image.resize(image, image_size)
    image = image.numpy()
    groups.setdefault(image.shape, ([], []))
    groups[image.shape][0].append(item)
    groups[image.shape][1].append(image)
  return list(groups.values())


def stack_set(vectors, image_lists, category):
  """(features [N, D], labels [N], names [N]) of one set, in label order."""
  xs, ys, names = [], [], []
  for index, (label, entry) in enumerate(image_lists.items()):
    for name in entry[category]:
      xs.append(vectors[(label, category, name)])
      ys.append(index)
      names.append(os.path.join(entry['dir'], name))
  if not xs:
    return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64), []
  return np.stack(xs), np.asarray(ys, np.int64), names


