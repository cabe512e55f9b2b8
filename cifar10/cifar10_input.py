"""Reads the CIFAR-10 binary files: checks, download, and the input pipelines.

The binary format (https://www.cs.toronto.edu/~kriz/cifar.html) is a run of
3,073-byte records: one label byte (0-9), then 1,024 red, 1,024 green and 1,024
blue bytes of a 32x32 image in row-major order.

* `distorted_inputs` feeds training through queue runners, as the tutorial did.
* `inputs` feeds evaluation through `tf.data`, one pass, so that every example
  is counted exactly once.
* `check_data_files` looks at every file before a pipeline is built, so a bad
  file is a clear error at start-up instead of a hung or crashed queue runner.
"""
import os
import shutil
import tarfile
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf

from cifar10 import kernels
from tutorials_common import download
from tutorials_common import files
from tutorials_common.errors import UsageError

# Process images of this size. The original images are 32 x 32; the tutorial
# crops them to 24 x 24, which cuts the compute for a small loss in accuracy.
IMAGE_SIZE = 24

# Global constants describing the CIFAR-10 data set.
NUM_CLASSES = 10
NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN = 50000
NUM_EXAMPLES_PER_EPOCH_FOR_EVAL = 10000

ORIGINAL_SIZE = 32
# How far a crop may lie from the centre of the image, in pixels.
CROP_MARGIN = (ORIGINAL_SIZE - IMAGE_SIZE) // 2
LABEL_BYTES = 1
IMAGE_BYTES = ORIGINAL_SIZE * ORIGINAL_SIZE * 3
RECORD_BYTES = LABEL_BYTES + IMAGE_BYTES

BATCHES_DIR = 'cifar-10-batches-bin'
# The classes in label order, as the data set's batches.meta.txt lists them.
CLASS_NAMES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
               'horse', 'ship', 'truck')
TRAIN_FILES = ['data_batch_%d.bin' % i for i in range(1, 6)]
TEST_FILES = ['test_batch.bin']

DATA_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'
DATA_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530'

# Queue-runner threads that read and distort training batches. The tutorial
# used 16 (one image per step). Batched, one thread already delivers more
# than training consumes, and more threads did not make the trainer faster
# (scripts/benchmark_speed.py measures it); the second thread is headroom
# for a busy machine.
NUM_PREPROCESS_THREADS = 2
# Records a queue-runner step reads and distorts, at least a batch. Each step
# is a session call from Python; fewer, larger ones leave the training step
# more of the cores (the documentation's Performance page has the figures).
RECORDS_PER_READ = 1024


class CifarDataError(UsageError):
  """The CIFAR-10 data is missing or is not in the CIFAR-10 binary format."""


# ----------------------------------------------------------------------------
# Checking files before a pipeline reads them.


def check_data_dir(data_dir):
  """CifarDataError when --data_dir cannot hold the data: one level off (the
  batches folder itself: use its parent; a file), on a symlink loop or a
  link to nothing, or holding something other than a folder (a loop, a
  file) where the batches folder belongs."""
  path = os.path.abspath(data_dir)
  batches = os.path.join(path, BATCHES_DIR)
  if os.path.isdir(batches):
    return
  blocked = download.what_blocks(data_dir)
  if blocked:
    raise CifarDataError(
        '--data_dir=%s cannot be used: %s %s. Remove or mend it, or point '
        '--data_dir at another folder.' % ((data_dir,) + blocked))
  if os.path.lexists(batches):
    name, words = download.what_blocks(batches) or (
        batches, 'is a file' if os.path.isfile(batches) else 'is not a folder')
    raise CifarDataError(
        '%s %s, where the folder of CIFAR-10 batches belongs: remove it and '
        'run again to download the data afresh, or put the extracted %s/ '
        'folder there.' % (name, words, BATCHES_DIR))
  if os.path.isfile(path):
    raise CifarDataError(
        '--data_dir=%s is a file; point --data_dir at the folder that holds '
        '%s/ (or the archive %s), such as --data_dir=%s.' % (
            data_dir, BATCHES_DIR, os.path.basename(DATA_URL),
            os.path.dirname(path)))
  if os.path.basename(path) == BATCHES_DIR or any(
      os.path.isfile(os.path.join(path, name))
      for name in TRAIN_FILES + TEST_FILES):
    raise CifarDataError(
        '--data_dir=%s is the %s folder itself; point --data_dir at the '
        'folder that holds it: --data_dir=%s' % (data_dir, BATCHES_DIR,
                                                 os.path.dirname(path)))


def data_files(data_dir, eval_data=False):
  """Paths of the binary files for training (eval_data False) or test.

  Raises CifarDataError when data_dir is one level off (check_data_dir).
  """
  check_data_dir(data_dir)
  names = TEST_FILES if eval_data else TRAIN_FILES
  return [os.path.join(data_dir, BATCHES_DIR, name) for name in names]


def check_data_files(filenames):
  """Raises CifarDataError naming the first file that cannot be read as CIFAR-10.

  Returns the number of records in all files together.
  """
  if not filenames:
    raise CifarDataError('No CIFAR-10 files were given.')
  total = 0
  for filename in filenames:
    if not os.path.isfile(filename):
      # Something other than the file where it belongs: a folder, a symlink
      # loop, a link to nothing, or a FIFO or device a read would wait on.
      blocked = download.what_blocks(filename)
      if blocked is None and os.path.lexists(filename):
        blocked = filename, ('is a folder' if os.path.isdir(filename) else
                             'is not a regular file (a FIFO, a socket or a '
                             'device)')
      if blocked and blocked[0] == filename:
        raise CifarDataError(
            '%s %s, where the CIFAR-10 file belongs: remove it and put the '
            'file there, or delete %s/ and let cifar10_train download it '
            'again.' % (blocked + (BATCHES_DIR,)))
      if blocked:
        raise CifarDataError(
            'Cannot read CIFAR-10 file %s: %s %s. Remove or mend it, or point '
            '--data_dir at another folder.' % ((filename,) + blocked))
      folder = os.path.dirname(filename)
      hint = ('the folder is empty' if os.path.isdir(folder) and
              not os.listdir(folder) else 'the file does not exist')
      raise CifarDataError(
          'Missing CIFAR-10 file %s (%s). Point --data_dir at the folder that '
          'holds %s/, or let cifar10_train download it.' %
          (filename, hint, BATCHES_DIR))
    size = os.path.getsize(filename)
    if size == 0 or size % RECORD_BYTES:
      raise CifarDataError(
          'CIFAR-10 file %s has %d bytes, which is not a positive multiple of '
          'the %d-byte record (1 label + 3072 pixel bytes): the file is '
          'truncated or is not a CIFAR-10 binary batch. Delete it and download '
          'the data again.' % (filename, size, RECORD_BYTES))
    records = np.memmap(filename, dtype=np.uint8, mode='r').reshape(
        -1, RECORD_BYTES)
    labels = np.asarray(records[:, 0])
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
      raise CifarDataError(
          'CIFAR-10 file %s is not in the CIFAR-10 binary format: record %d '
          'has label byte %d, but labels are 0-%d. (The python-pickle version '
          'of CIFAR-10 will not work: use the binary version, %s.)' %
          (filename, bad[0], labels[bad[0]], NUM_CLASSES - 1,
           os.path.basename(DATA_URL)))
    total += len(labels)
  return total


def read_records(filename):
  """The records of one binary file, uint8 [N, RECORD_BYTES], once checked.

  Raises CifarDataError as check_data_files does.
  """
  check_data_files([filename])
  return np.fromfile(filename, np.uint8).reshape(-1, RECORD_BYTES)


def record_images(records):
  """uint8 [N, 32, 32, 3] images of records from read_records."""
  return records[:, LABEL_BYTES:].reshape(
      -1, 3, ORIGINAL_SIZE, ORIGINAL_SIZE).transpose(0, 2, 3, 1)


# ----------------------------------------------------------------------------
# Download.


def _safe_extract(archive_path, dest_dir):
  """Extracts a tar archive, refusing any member that would land outside dest_dir.

  Extracts into a temporary folder in dest_dir; each top-level entry is then
  renamed into dest_dir, so a failure (a damaged archive, a full disk)
  leaves nothing half-extracted behind.
  """
  os.makedirs(dest_dir, exist_ok=True)
  staging = tempfile.mkdtemp(prefix='.extracting-', dir=dest_dir)
  try:
    _extract_checked(archive_path, staging)
    for name in os.listdir(staging):
      if not os.path.exists(os.path.join(dest_dir, name)):
        os.rename(os.path.join(staging, name), os.path.join(dest_dir, name))
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def _extract_checked(archive_path, dest_dir):
  """Extracts into dest_dir, refusing links and members that leave it.

  What it writes are plain files and folders of the user who runs it,
  whoever that is: the archive's owners are ignored (root would otherwise
  give the files to whoever made the archive), and setuid, setgid, sticky
  and group or other write bits are dropped. tarfile's 'data' filter does
  that where Python has it (3.10.12 on); before, each member is made so
  here.
  """
  dest_root = os.path.realpath(dest_dir)
  # A damaged archive fails in tarfile (ReadError), gzip (EOFError when cut
  # short) or the file system (a member that is both a file and a folder).
  try:
    with tarfile.open(archive_path, 'r:gz') as tar:
      members = tar.getmembers()
      for member in members:
        target = os.path.realpath(os.path.join(dest_root, member.name))
        if not (member.isfile() or member.isdir()):
          raise CifarDataError(
              'Refusing to extract %s: member %r is a link or device, which '
              'the CIFAR-10 archive never contains.' %
              (archive_path, member.name))
        if os.path.commonpath([dest_root, target]) != dest_root:
          raise CifarDataError(
              'Refusing to extract %s: member %r would be written outside '
              '%s.' % (archive_path, member.name, dest_root))
      if hasattr(tarfile, 'data_filter'):
        tar.extractall(dest_root, members=members, filter='data')
      else:
        for member in members:
          member.mode = member.mode & 0o755 | (0o600 if member.isfile()
                                               else 0o700)
          member.uid, member.gid = os.getuid(), os.getgid()
          member.uname = member.gname = ''  # So that uid and gid are used.
        tar.extractall(dest_root, members=members)
  except OSError as e:
    if e.errno not in files.WRITE_ERRNOS:
      raise CifarDataError(
          'Cannot extract %s (%s): the archive is damaged. Delete it and run '
          'again to download it afresh.' % (archive_path, e)) from None
    raise CifarDataError('Cannot extract %s into %s: %s.' % (
        archive_path, os.path.dirname(dest_root), e.strerror)) from None
  except (tarfile.TarError, EOFError) as e:
    raise CifarDataError(
        'Cannot extract %s (%s): the archive is damaged. Delete it and run '
        'again to download it afresh.' % (archive_path, e))


def maybe_download_and_extract(data_dir, url=DATA_URL, md5=DATA_MD5):
  """Makes sure data_dir/cifar-10-batches-bin exists, downloading if needed.

  Extracts only when the batches folder is missing, so an evaluation started
  beside a running trainer never rewrites files the trainer is reading. An
  archive already in data_dir (put there by hand when offline) is used as is.
  A data_dir that is one level off, or with a symlink loop (or another thing
  than a folder) in the way, is refused before anything is written
  (check_data_dir), and one made for a download that failed is removed.
  The archive is extracted into a temporary folder beside the batches folder
  and renamed, so an extraction cut short leaves no half batches folder.
  """
  batches_dir = os.path.join(data_dir, BATCHES_DIR)
  if os.path.isdir(batches_dir):
    return batches_dir
  check_data_dir(data_dir)
  filename = url.split('/')[-1]
  filepath = os.path.join(data_dir, filename)
  if not os.path.exists(filepath):
    download.download(
        url, filepath, md5=md5, error=CifarDataError,
        offline_hint='Without internet access, download %s on another '
        'machine and put it at %s (or its extracted folder at %s), then run '
        'again.' % (filename, filepath, batches_dir))
  elif md5:  # Put there by hand, or by an older run.
    actual_md5 = download.file_md5(filepath)
    if actual_md5 != md5:
      raise CifarDataError(
          'Archive %s has md5 %s, expected %s: the download is corrupt or '
          'incomplete. Delete it and run again.' % (filepath, actual_md5, md5))
  _safe_extract(filepath, data_dir)
  if not os.path.isdir(batches_dir):
    raise CifarDataError('Archive %s did not contain %s/.' %
                         (filepath, BATCHES_DIR))
  return batches_dir


# ----------------------------------------------------------------------------
# Decoding.


class CIFAR10Record(object):
  pass


def read_cifar10(filename_queue):
  """Reads and parses one example from CIFAR-10 data files.

  Args:
    filename_queue: a queue of strings with the filenames to read from.

  Returns:
    An object with fields height, width, depth (32, 32, 3), key (a scalar
    string: filename and record number), label (int32 of shape [1], 0-9) and
    uint8image (a [32, 32, 3] uint8 tensor).
  """
  result = CIFAR10Record()
  result.height = ORIGINAL_SIZE
  result.width = ORIGINAL_SIZE
  result.depth = 3
  reader = tf.FixedLengthRecordReader(record_bytes=RECORD_BYTES)
  result.key, value = reader.read(filename_queue)
  images, labels = decode_records(value)
  result.uint8image = tf.reshape(images, [ORIGINAL_SIZE, ORIGINAL_SIZE, 3])
  result.label = tf.reshape(labels, [1])
  return result


def decode_records(record_bytes, depth_major=False):
  """Splits a batch of 3,073-byte strings into int32 labels and uint8 images.

  The images are NHWC, or with depth_major as the records hold them:
  [batch, channel, row, column].
  """
  records = tf.reshape(tf.decode_raw(record_bytes, tf.uint8), [-1, RECORD_BYTES])
  labels = tf.cast(records[:, 0], tf.int32)
  depth_major_images = tf.reshape(records[:, LABEL_BYTES:],
                                  [-1, 3, ORIGINAL_SIZE, ORIGINAL_SIZE])
  if depth_major:
    return depth_major_images, labels
  return tf.transpose(depth_major_images, [0, 2, 3, 1]), labels


def distort_image(image):
  """The tutorial's distortions of one [32, 32, 3] image, with tf.image.

  The form the tutorial's queue runners and a tf.data map use, one image at
  a time; distort_images is the same for a whole batch in a few ops.
  """
  image = tf.image.random_crop(tf.cast(image, tf.float32),
                               [IMAGE_SIZE, IMAGE_SIZE, 3])
  image = tf.image.random_flip_left_right(image)
  image = tf.image.random_brightness(image, max_delta=63)
  image = tf.image.random_contrast(image, lower=0.2, upper=1.8)
  return tf.image.per_image_standardization(image)


def distort_images(images, color_jitter=True, depth_major=False,
                   crop_shift=CROP_MARGIN):
  """Random crop, flip, brightness and contrast of each image of a uint8 batch.

  color_jitter=False leaves out the brightness and contrast changes;
  crop_shift: how many pixels from the centre a crop may lie (the
  tutorial's 4: anywhere in the 32x32 image);
  depth_major: images are [batch, channel, row, column], as the records hold
  them.
  """
  count = tf.shape(images)[0]
  centre = CROP_MARGIN

  def offsets():
    return tf.random.uniform([count], centre - crop_shift,
                             centre + crop_shift + 1, dtype=tf.int32)

  # distort_image's arithmetic for the whole batch at once
  # (kernels.distort_batch: the fused kernel, or a few TensorFlow ops).
  return kernels.distort_batch(
      images, offsets(), offsets(),
      flip=tf.random.uniform([count]) < 0.5,
      brightness_delta=(tf.random.uniform([count], -63.0, 63.0)
                        if color_jitter else tf.zeros([count])),
      contrast_factor=(tf.random.uniform([count], 0.2, 1.8)
                       if color_jitter else tf.ones([count])),
      size=IMAGE_SIZE, depth_major=depth_major)


# The 24x24 crops of a 32x32 image that evaluation can score, as (row,
# column) of their top left corner: the central one (the tutorial's), then
# the four corners (multi-crop evaluation, --eval_crops=5).
CROP_OFFSETS = ((4, 4), (0, 0), (0, 8), (8, 0), (8, 8))


def eval_images(images, crops=1):
  """The evaluation preprocessing of a batch of 32x32 images: the central
  24x24 crop, standardised, [batch, 24, 24, 3]; with crops=5, the four
  corner crops after it, [batch, 5, 24, 24, 3]."""
  views = [tf.image.per_image_standardization(tf.cast(
      images[:, y:y + IMAGE_SIZE, x:x + IMAGE_SIZE], tf.float32))
           for y, x in CROP_OFFSETS[:crops]]
  return views[0] if crops == 1 else tf.stack(views, axis=1)


def shuffle_queue_examples(num_records):
  """Images the shuffling queue holds before training starts: the tutorial's
  40% of an epoch (20,000 of CIFAR-10's 50,000). Of a smaller data set, 40% of
  its records, rather than 20,000 distorted copies of a few records."""
  min_fraction_of_examples_in_queue = 0.4
  return max(1, int(min(num_records, NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN) *
                    min_fraction_of_examples_in_queue))


def distorted_inputs(data_dir, batch_size,
                     num_threads=NUM_PREPROCESS_THREADS, color_jitter=True,
                     crop_shift=CROP_MARGIN):
  """Construct distorted input for CIFAR training using the Reader ops.

  Args:
    data_dir: path to the CIFAR-10 data directory (holding cifar-10-batches-bin/).
    batch_size: number of images per batch.
    num_threads: queue-runner threads reading and distorting batches.
    color_jitter: the tutorial's brightness and contrast changes (the
      schedule's color_jitter).
    crop_shift: how far from the centre a crop may lie, in pixels (the
      schedule's crop_shift; the tutorial's 4: anywhere).

  Returns:
    images: 4D float32 tensor of [batch_size, IMAGE_SIZE, IMAGE_SIZE, 3].
    labels: 1D int32 tensor of [batch_size].

  Raises:
    CifarDataError: a file is missing or is not CIFAR-10 binary data.
  """
  filenames = data_files(data_dir, eval_data=False)
  num_records = check_data_files(filenames)

  with tf.name_scope('data_augmentation'):
    filename_queue = tf.train.string_input_producer(filenames)
    # The tutorial read, distorted and enqueued one image per queue-runner
    # step: a dozen small ops and a Python round trip per image, which slowed
    # the trainer (scripts/benchmark_speed.py measures both side by side).
    # Reading RECORDS_PER_READ records at a time and distorting them
    # together keeps the queue runners and the shuffling queue, at a
    # fraction of the cost.
    reader = tf.FixedLengthRecordReader(record_bytes=RECORD_BYTES)
    records_per_read = max(batch_size, RECORDS_PER_READ)
    _, records = reader.read_up_to(filename_queue, records_per_read)
    # As the records hold them: the distortions' kernel reads that layout.
    uint8images, labels = decode_records(records, depth_major=True)
    float_images = distort_images(uint8images, color_jitter, depth_major=True,
                                  crop_shift=crop_shift)
    float_images.set_shape([None, IMAGE_SIZE, IMAGE_SIZE, 3])

    # Ensure that the random shuffling has good mixing properties.
    min_queue_examples = shuffle_queue_examples(num_records)
    # The tutorial's line, which its text quotes (read a batch at a time,
    # the queue fills faster than it says).
    print('Filling queue with %d CIFAR images before starting to train. '
          'This will take a few minutes.' % min_queue_examples)

    images, label_batch = tf.train.shuffle_batch(
        [float_images, labels],
        batch_size=batch_size,
        num_threads=num_threads,
        capacity=min_queue_examples + 3 * records_per_read,
        min_after_dequeue=min_queue_examples,
        enqueue_many=True)
  tf.summary.image('images', images)
  return images, tf.reshape(label_batch, [batch_size])


def inputs(eval_data, data_dir, batch_size, num_examples=None, crops=1):
  """Construct input for CIFAR evaluation: one pass, in file order.

  Unlike the tutorial's queue, this yields every example exactly once and
  then raises tf.errors.OutOfRangeError; the last batch may be smaller.
  Each new session starts a new pass.

  Args:
    eval_data: bool, whether to use the test set (True) or the train set.
    data_dir: path to the CIFAR-10 data directory.
    batch_size: number of images per batch.
    num_examples: how many examples to read (default: all in the files).
    crops: 1 (the central crop) or 5 (and the four corners): eval_images.

  Returns:
    images: float32 [<=batch_size, IMAGE_SIZE, IMAGE_SIZE, 3], or with
      crops=5 [<=batch_size, 5, IMAGE_SIZE, IMAGE_SIZE, 3].
    labels: 1D int32 tensor of [<=batch_size].

  Raises:
    CifarDataError: a file is missing or is not CIFAR-10 binary data, or
      num_examples is more than the files hold.
  """
  filenames = data_files(data_dir, eval_data=eval_data)
  available = check_data_files(filenames)
  if num_examples is None:
    num_examples = available
  if not 0 < num_examples <= available:
    raise CifarDataError(
        'Asked to evaluate %d examples, but %s holds %d: use --num_examples '
        'between 1 and %d.' % (num_examples, ', '.join(filenames), available,
                               available))

  def _parse(record_bytes):
    images, labels = decode_records(record_bytes)
    return eval_images(images, crops), labels

  with tf.name_scope('input'):
    dataset = (tf.data.FixedLengthRecordDataset(filenames, RECORD_BYTES)
               .take(num_examples)
               .batch(batch_size)
               .map(_parse)
               .prefetch(2))
    images, labels = tf.data.make_one_shot_iterator(dataset).get_next()
  return images, labels
