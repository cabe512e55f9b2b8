"""The CIFAR-10 reader, the checks on its files, and both input pipelines."""
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from cifar10 import cifar10_input
from cifar10 import kernels
from cifar10.kernels import build as kernel_build
import cifar_fixtures

HAS_COMPILER = kernel_build.has_compiler()
# kernels.distort_batch's two forms: the fused kernel of distort_kernel.cc
# (where a compiler builds it) and TensorFlow ops.
DISTORTIONS = [pytest.param('kernel', marks=pytest.mark.skipif(
                   not HAS_COMPILER, reason='no C++ compiler to build the '
                   'distortions kernel')), 'tensorflow ops']


@pytest.fixture(params=DISTORTIONS)
def distortions(request, monkeypatch):
  """Which form kernels.distort_batch takes in the test."""
  if request.param == 'tensorflow ops':
    monkeypatch.setenv(kernels.DISTORT_SWITCH, 'off')
  else:
    monkeypatch.delenv(kernels.DISTORT_SWITCH, raising=False)
  return request.param


def _uses_kernel(graph):
  return any(op.type == 'TutorialDistortImages'
             for op in graph.get_operations())


def _run_queue_pipeline(fetches):
  with tf.Session() as sess:
    sess.run(tf.local_variables_initializer())
    coord = tf.train.Coordinator()
    threads = tf.train.start_queue_runners(sess=sess, coord=coord)
    try:
      return sess.run(fetches)
    finally:
      coord.request_stop()
      sess.run(tf.get_collection(tf.GraphKeys.QUEUE_RUNNERS)[0].cancel_op)
      coord.join(threads, stop_grace_period_secs=5)


def test_read_cifar10_decodes_golden_bytes(tmp_path):
  # Record: label 7, then every pixel byte is (index % 251): R plane first.
  pixel_bytes = bytes(i % 251 for i in range(3072))
  path = tmp_path / 'one.bin'
  path.write_bytes(b'\x07' + pixel_bytes)
  with tf.Graph().as_default():
    queue = tf.train.string_input_producer([str(path)], shuffle=False)
    record = cifar10_input.read_cifar10(queue)
    image, label, key = _run_queue_pipeline(
        [record.uint8image, record.label, record.key])
  assert label.tolist() == [7]
  assert image.dtype == np.uint8 and image.shape == (32, 32, 3)
  # Row 2, column 5: red at 2*32+5, green 1024 later, blue 2048 later.
  assert image[2, 5].tolist() == [69, (1024 + 69) % 251, (2048 + 69) % 251]
  assert image[31, 31, 2] == 3071 % 251
  assert key.decode().startswith(str(path))


def test_distorted_inputs_shape_and_standardisation(tmp_path):
  data_dir = cifar_fixtures.write_dataset(tmp_path, records_per_file=20)
  with tf.Graph().as_default():
    images, labels = cifar10_input.distorted_inputs(data_dir, batch_size=16)
    assert images.shape.as_list() == [16, 24, 24, 3]
    queue, = [op for op in tf.get_default_graph().get_operations()
              if op.type == 'RandomShuffleQueueV2']
    # 40% of the 100 records before the first batch, as of the real data.
    assert queue.get_attr('min_after_dequeue') == 40
    image_batch, label_batch = _run_queue_pipeline([images, labels])
  assert image_batch.dtype == np.float32 and label_batch.dtype == np.int32
  assert set(label_batch.tolist()) <= set(range(10))
  per_image = image_batch.reshape(16, -1)
  np.testing.assert_allclose(per_image.mean(axis=1), 0, atol=1e-3)
  np.testing.assert_allclose(per_image.std(axis=1), 1, atol=1e-2)


def test_the_shuffling_queue_holds_40_percent_of_the_data_at_most_20000():
  assert cifar10_input.shuffle_queue_examples(50000) == 20000  # The tutorial's.
  assert cifar10_input.shuffle_queue_examples(80000) == 20000
  assert cifar10_input.shuffle_queue_examples(1000) == 400
  assert cifar10_input.shuffle_queue_examples(1) == 1


def _eval_pass(data_dir, batch_size, num_examples):
  with tf.Graph().as_default():
    images, labels = cifar10_input.inputs(True, data_dir, batch_size,
                                          num_examples)
    out_images, out_labels = [], []
    with tf.Session() as sess:
      while True:
        try:
          i, l = sess.run([images, labels])
        except tf.errors.OutOfRangeError:
          break
        out_images.append(i)
        out_labels.append(l)
  return np.concatenate(out_images), np.concatenate(out_labels)


def test_eval_inputs_are_deterministic_and_count_each_example_once(tmp_path):
  test_labels = np.arange(37) % 10
  data_dir = cifar_fixtures.write_dataset(tmp_path, records_per_file=5,
                                          test_labels=test_labels)
  images_a, labels_a = _eval_pass(data_dir, batch_size=16, num_examples=37)
  images_b, labels_b = _eval_pass(data_dir, batch_size=16, num_examples=37)
  assert images_a.shape == (37, 24, 24, 3)
  assert labels_a.tolist() == test_labels.tolist()
  np.testing.assert_array_equal(images_a, images_b)
  np.testing.assert_array_equal(labels_a, labels_b)
  # The central crop of the raw image, standardised.
  raw = cifar_fixtures.learnable_images(test_labels, 9)[0, 4:28, 4:28]
  raw = raw.astype(np.float32)
  expected = (raw - raw.mean()) / max(raw.std(), 1 / np.sqrt(raw.size))
  np.testing.assert_allclose(images_a[0], expected, atol=1e-4)


def test_eval_inputs_reject_more_examples_than_the_files_hold(tmp_path):
  data_dir = cifar_fixtures.write_dataset(tmp_path, records_per_file=5)
  with tf.Graph().as_default():
    with pytest.raises(cifar10_input.CifarDataError, match='--num_examples'):
      cifar10_input.inputs(True, data_dir, 4, num_examples=6)


@pytest.mark.parametrize('damage, message', [
    ('missing', 'Missing CIFAR-10 file'),
    ('truncated', 'not a positive multiple of the 3073-byte record'),
    ('empty_file', 'has 0 bytes'),
    ('not_cifar', 'is not in the CIFAR-10 binary format'),
])
def test_check_data_files_names_the_bad_file(tmp_path, damage, message):
  data_dir = cifar_fixtures.write_dataset(tmp_path, records_per_file=4)
  bad = os.path.join(data_dir, 'cifar-10-batches-bin', 'data_batch_3.bin')
  if damage == 'missing':
    os.remove(bad)
  elif damage == 'truncated':
    with open(bad, 'r+b') as f:
      f.truncate(2 * 3073 + 100)
  elif damage == 'empty_file':
    open(bad, 'wb').close()
  else:
    with open(bad, 'wb') as f:
      f.write(b'\x89PNG' + b'\xff' * (3073 * 2 - 4))
  with pytest.raises(cifar10_input.CifarDataError, match=message) as error:
    cifar10_input.check_data_files(cifar10_input.data_files(data_dir))
  assert bad in str(error.value)


WHAT_IS_THERE = {
    'folder': 'is a folder, where the CIFAR-10 file belongs: remove it and '
              'put the file there, or delete cifar-10-batches-bin/ and let '
              'cifar10_train download it again.',
    'symlink loop': 'is a symlink loop (a link that leads back to itself, '
                    'directly or through other links), where the CIFAR-10 '
                    'file belongs',
    'link to nothing': 'is a link to %(missing)s, which does not exist, '
                       'where the CIFAR-10 file belongs',
    'fifo': 'is not a regular file (a FIFO, a socket or a device), where the '
            'CIFAR-10 file belongs',
}


@pytest.mark.parametrize('thing', sorted(WHAT_IS_THERE))
def test_check_data_files_names_what_is_where_a_file_belongs(tmp_path, thing):
  # Each was 'the file does not exist', and a FIFO would have been waited on.
  data_dir = cifar_fixtures.write_dataset(tmp_path, records_per_file=4)
  bad = os.path.join(data_dir, 'cifar-10-batches-bin', 'data_batch_4.bin')
  os.remove(bad)
  missing = str(tmp_path / 'gone.bin')
  if thing == 'folder':
    os.mkdir(bad)
  elif thing == 'symlink loop':
    os.symlink('data_batch_4.bin', bad)
  elif thing == 'link to nothing':
    os.symlink(missing, bad)
  else:
    os.mkfifo(bad)
  with pytest.raises(cifar10_input.CifarDataError) as error:
    cifar10_input.check_data_files(cifar10_input.data_files(data_dir))
  message = str(error.value)
  assert message.startswith('%s %s' % (bad, WHAT_IS_THERE[thing] % {
      'missing': missing}))
  assert '\n' not in message


def test_check_data_files_names_a_loop_on_the_way_to_a_file(tmp_path):
  loop = tmp_path / 'loop'
  os.symlink('loop', str(loop))
  with pytest.raises(cifar10_input.CifarDataError) as error:
    cifar10_input.check_data_files([str(loop / 'data_batch_1.bin')])
  assert str(error.value) == (
      'Cannot read CIFAR-10 file %s: %s is a symlink loop (a link that leads '
      'back to itself, directly or through other links). Remove or mend it, '
      'or point --data_dir at another folder.' % (loop / 'data_batch_1.bin',
                                                  loop))


def test_the_fixtures_write_the_folder_the_reader_reads(tmp_path):
  # cifar_fixtures restates the folder's name to stay free of TensorFlow.
  assert cifar_fixtures.BATCHES_DIR == cifar10_input.BATCHES_DIR
  data_dir = cifar_fixtures.write_dataset(tmp_path, records_per_file=3)
  assert cifar10_input.check_data_files(
      cifar10_input.data_files(data_dir, eval_data=True)) == 3


def test_check_data_files_reports_an_empty_folder(tmp_path):
  os.makedirs(tmp_path / 'cifar-10-batches-bin')
  with pytest.raises(cifar10_input.CifarDataError, match='folder is empty'):
    cifar10_input.check_data_files(cifar10_input.data_files(str(tmp_path)))


def test_check_data_files_counts_records(tmp_path):
  data_dir = cifar_fixtures.write_dataset(tmp_path, records_per_file=7)
  assert cifar10_input.check_data_files(
      cifar10_input.data_files(data_dir)) == 35
  assert cifar10_input.check_data_files(
      cifar10_input.data_files(data_dir, eval_data=True)) == 7


@pytest.mark.parametrize('depth_major', [False, True])
def test_batch_distortions_match_tf_image_one_image_at_a_time(distortions,
                                                              depth_major):
  """The vectorised distortions do what tf.image's per-image functions do."""
  rng = np.random.RandomState(5)
  images = rng.randint(0, 256, (6, 32, 32, 3)).astype(np.uint8)
  # The last image is one grey level: standardisation's smallest stddev.
  images[5] = 77
  offset_y = np.array([0, 8, 3, 5, 8, 1], np.int32)
  offset_x = np.array([0, 8, 7, 2, 0, 4], np.int32)
  flip = np.array([False, True, True, False, True, False])
  delta = rng.uniform(-63, 63, 6).astype(np.float32)
  factor = rng.uniform(0.2, 1.8, 6).astype(np.float32)
  with tf.Graph().as_default() as graph:
    batch = kernels.distort_batch(
        tf.constant(images.transpose(0, 3, 1, 2) if depth_major else images),
        tf.constant(offset_y), tf.constant(offset_x), tf.constant(flip),
        tf.constant(delta), tf.constant(factor), cifar10_input.IMAGE_SIZE,
        depth_major=depth_major)
    assert _uses_kernel(graph) == (distortions == 'kernel')
    reference = []
    for i in range(6):
      image = tf.image.crop_to_bounding_box(
          tf.cast(images[i], tf.float32), offset_y[i], offset_x[i], 24, 24)
      if flip[i]:
        image = tf.image.flip_left_right(image)
      image = tf.image.adjust_brightness(image, delta[i])
      image = tf.image.adjust_contrast(image, factor[i])
      reference.append(tf.image.per_image_standardization(image))
    with tf.Session() as sess:
      batch_value, reference_value = sess.run([batch, tf.stack(reference)])
  assert batch_value.shape == (6, 24, 24, 3)
  np.testing.assert_allclose(batch_value[:5], reference_value[:5], atol=1e-4)
  # A flat image is 0 everywhere; tf.image's own rounding leaves 3e-4 there.
  np.testing.assert_allclose(batch_value[5], 0, atol=1e-3)
  if distortions == 'kernel':
    np.testing.assert_array_equal(batch_value[5], 0)
  # Mirrored crops really differ from unmirrored ones.
  assert np.abs(batch_value[1] - batch_value[1, :, ::-1]).max() > 0.5


def test_random_distortions_cover_every_crop_offset_and_both_flips(
    distortions):
  # Each column has its own grey level, growing as the square of its index,
  # so every (crop offset, mirror) gives a different standardised row.
  levels = (np.arange(32) ** 2 // 4).astype(np.uint8)
  images = np.tile(levels[None, None, :, None], (400, 32, 1, 3))
  profiles = {}
  for offset in range(9):
    for flip in (False, True):
      row = levels[offset:offset + 24].astype(np.float64)
      row = row[::-1] if flip else row
      profiles[(offset, flip)] = (row - row.mean()) / row.std()
  with tf.Graph().as_default():
    distorted = cifar10_input.distort_images(tf.constant(images))
    with tf.Session() as sess:
      out = sess.run(distorted)
  seen = set()
  for image in out:
    row = image[5, :, 1]
    matches = [key for key, profile in profiles.items()
               if np.abs(row - profile).max() < 1e-3]
    assert len(matches) == 1
    seen.add(matches[0])
  assert seen == set(profiles)  # 18 outcomes, 400 draws.


def test_a_crop_shift_keeps_every_crop_that_near_the_centre(distortions):
  """--schedule=fast25's crops: within 2 pixels of the centre, each such
  offset drawn."""
  levels = (np.arange(32) ** 2 // 4).astype(np.uint8)
  images = np.tile(levels[None, None, :, None], (300, 32, 1, 3))
  with tf.Graph().as_default():
    distorted = cifar10_input.distort_images(tf.constant(images),
                                             color_jitter=False, crop_shift=2)
    with tf.Session() as sess:
      out = sess.run(distorted)
  seen = set()
  for image in out:
    row = image[5, :, 1]
    for offset in range(9):
      for flip in (False, True):
        expected = levels[offset:offset + 24].astype(np.float64)
        expected = expected[::-1] if flip else expected
        if np.abs(row - (expected - expected.mean()) /
                  expected.std()).max() < 1e-3:
          seen.add(offset)
  assert seen == {2, 3, 4, 5, 6}


def test_without_color_jitter_each_image_is_a_standardised_crop(distortions):
  # Random colour images: with the jitter off (--schedule=fast50), each
  # output is exactly one of the 162 standardised crops and mirrors of its
  # input; with it on, almost none is.
  rng = np.random.RandomState(3)
  images = rng.randint(0, 256, size=(20, 32, 32, 3)).astype(np.uint8)

  def crops(image):
    for y in range(9):
      for x in range(9):
        crop = image[y:y + 24, x:x + 24].astype(np.float64)
        for view in (crop, crop[:, ::-1]):
          yield (view - view.mean()) / max(view.std(), 1 / np.sqrt(view.size))

  with tf.Graph().as_default():
    batch = tf.constant(images)
    plain = cifar10_input.distort_images(batch, color_jitter=False)
    jittered = cifar10_input.distort_images(batch)
    with tf.Session() as sess:
      plain, jittered = sess.run([plain, jittered])

  def is_a_crop(out, image):
    return any(np.abs(out - c).max() < 1e-4 for c in crops(image))

  assert all(is_a_crop(out, image) for out, image in zip(plain, images))
  assert sum(is_a_crop(out, image) for out, image in zip(jittered, images)) < 3


@pytest.mark.skipif(not HAS_COMPILER, reason='no C++ compiler to build the '
                    'distortions kernel')
@pytest.mark.parametrize('offset_y, count, message', [
    (9, 2, r'the crop of image 1 at \(9, 0\) does not fit in 32x32'),
    (-1, 2, r'the crop of image 1 at \(-1, 0\) does not fit'),
    (0, 3, r'needs one offset_y per image \(2\), got shape \[3\]'),
])
def test_the_distortions_kernel_refuses_a_crop_outside_the_image(
    offset_y, count, message):
  with tf.Graph().as_default():
    distorted = kernels.distort_batch(
        tf.zeros([2, 32, 32, 3], tf.uint8), tf.constant([0] * (count - 1) +
                                                        [offset_y]),
        tf.zeros([2], tf.int32), tf.zeros([2], tf.bool), tf.zeros([2]),
        tf.ones([2]), cifar10_input.IMAGE_SIZE)
    with tf.Session() as sess:
      with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        sess.run(distorted)


def test_the_training_pipeline_distorts_with_the_kernel_where_it_builds(
    distortions, tmp_path):
  data_dir = cifar_fixtures.write_dataset(tmp_path, records_per_file=20)
  with tf.Graph().as_default() as graph:
    images, labels = cifar10_input.distorted_inputs(data_dir, 8)
    assert _uses_kernel(graph) == (distortions == 'kernel')
    images, labels = _run_queue_pipeline([images, labels])
  assert images.shape == (8, 24, 24, 3) and labels.shape == (8,)
  # Standardised: each image's mean 0 and standard deviation 1.
  np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(images.std(axis=(1, 2, 3)), 1, atol=1e-3)
