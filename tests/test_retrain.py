"""Tests of image retraining (image_retraining/: retrain.py, label_image.py etc.)."""
import os

import numpy as np
import pytest

from cifar_fixtures import run_retraining
import tensorflow as tf

from image_retraining import bottlenecks, distortions, features, split
from image_retraining.errors import RetrainError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLOURS = {'Red_Things': (1, 0, 0), 'green': (0, 1, 0), 'blue-ish': (0, 0, 1)}


class _MeanColour(tf.Module):
  """Tiny feature extractor: per-channel mean and std (6 features)."""

  @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3],
                                              tf.float32)])
  def __call__(self, images):
    mean = tf.reduce_mean(images, axis=[1, 2])
    return tf.concat([mean, tf.math.reduce_std(images, axis=[1, 2])], 1)


@pytest.fixture(scope='module')
def extractor_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('extractor') / 'mean_colour')
  tf.saved_model.save(_MeanColour(), path)
  return path


def _image(colour, rng, size=12):
  base = np.asarray(colour, np.float32) * 0.6 + 0.2
  noise = rng.uniform(-0.2, 0.2, (size, size, 3))
  return np.clip((base + noise) * 255, 0, 255).astype(np.uint8)


def write_folders(root, per_class=30, colours=COLOURS, seed=0):
  rng = np.random.RandomState(seed)
  for name, colour in colours.items():
    os.makedirs(os.path.join(root, name), exist_ok=True)
    for i in range(per_class):
      image = _image(colour, rng)
      if i % 2:
        data, ext = tf.io.encode_png(image), 'png'
      else:
        data, ext = tf.io.encode_jpeg(image), 'jpg'
      with open(os.path.join(root, name, 'img%03d.%s' % (i, ext)), 'wb') as f:
        f.write(data.numpy())
  return str(root)


# ---- hash split ----

def test_split_is_stable_and_respects_percentages():
  names = ['file%05d.jpg' % i for i in range(5000)]
  sets = [split.which_set(n, 10, 10) for n in names]
  assert sets == [split.which_set(n, 10, 10) for n in names]
  frac = {s: sets.count(s) / len(sets) for s in set(sets)}
  assert abs(frac['validation'] - 0.10) < 0.02
  assert abs(frac['testing'] - 0.10) < 0.02
  assert abs(frac['training'] - 0.80) < 0.03
  # _nohash_ suffixes share the set of their stem.
  assert all(split.which_set('a%d_nohash_%d.png' % (i, j), 10, 10) ==
             split.which_set('a%d' % i, 10, 10)
             for i in range(50) for j in range(3))
  # Changing the percentages only moves files near the boundaries.
  assert split.which_set('x', 0, 0) == 'training'


def test_image_lists_labels_and_growth(tmp_path):
  write_folders(tmp_path, per_class=25)
  lists = split.create_image_lists(str(tmp_path), 10, 10)
  assert list(lists) == ['blue ish', 'green', 'red things']
  def sets(lists):
    return {(label, n): c for label, e in lists.items()
            for c in ('training', 'validation', 'testing') for n in e[c]}
  before = sets(lists)
  write_folders(tmp_path, per_class=40, seed=1)  # the folders grow
  after = sets(split.create_image_lists(str(tmp_path), 10, 10))
  assert len(before) == 75 and len(after) == 120
  assert all(after[key] == c for key, c in before.items())


def test_png_named_jpg_is_accepted_and_text_file_skipped(tmp_path, caplog):
  write_folders(tmp_path, per_class=20)
  png = tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)).numpy()
  with open(tmp_path / 'green' / 'really_png.jpg', 'wb') as f:
    f.write(png)
  (tmp_path / 'green' / 'notes.txt').write_text('not an image')
  lists = split.create_image_lists(str(tmp_path))
  names = [n for c in ('training', 'validation', 'testing')
           for n in lists['green'][c]]
  assert 'really_png.jpg' in names and 'notes.txt' not in names
  assert 'not PNG/JPEG' in caplog.text


@pytest.mark.parametrize('case,message', [
    ('missing', 'not found'),
    ('empty', 'No PNG/JPEG images'),
    ('single', 'Only one category'),
    ('too_few', 'no training images'),
])
def test_bad_image_dirs(tmp_path, case, message):
  image_dir = tmp_path / 'images'
  if case == 'empty':
    (image_dir / 'a').mkdir(parents=True)
    (image_dir / 'b').mkdir()
  elif case == 'single':
    write_folders(image_dir, colours={'only': (1, 0, 0)})
  elif case == 'too_few':
    write_folders(image_dir, per_class=1)
    # Force the single file of each class out of training.
    with pytest.raises(RetrainError, match=message):
      split.create_image_lists(str(image_dir), 50, 49)
    return
  with pytest.raises(RetrainError, match=message):
    split.create_image_lists(str(image_dir))


def test_empty_folder_is_skipped_with_warning(tmp_path, caplog):
  write_folders(tmp_path, per_class=20)
  (tmp_path / 'nothing_here').mkdir()
  lists = split.create_image_lists(str(tmp_path))
  assert 'nothing here' not in lists and len(lists) == 3
  assert 'skipping this folder' in caplog.text


# ---- bottleneck cache ----

class _Counting(features.FeatureExtractor):
  def __init__(self, handle):
    super(_Counting, self).__init__(handle)
    self.computed = 0

  def __call__(self, images):
    self.computed += len(images)
    return super(_Counting, self).__call__(images)


def test_cache_written_once_reused_and_corrupt_recomputed(tmp_path,
                                                          extractor_dir):
  image_dir = write_folders(tmp_path / 'images', per_class=20)
  cache = str(tmp_path / 'cache')
  lists = split.create_image_lists(image_dir)
  extractor = _Counting(extractor_dir)
  vectors, stats = bottlenecks.cache_bottlenecks(lists, image_dir, cache,
                                                 extractor, batch_size=16)
  assert extractor.computed == 60 and stats['created'] == 60
  files = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs]
  assert len(files) == 60
  first = vectors[('green', 'training', lists['green']['training'][0])]
  assert first.shape == (6,) and first[1] > first[0]

  extractor.computed = 0
  lists = split.create_image_lists(image_dir)
  vectors2, stats = bottlenecks.cache_bottlenecks(lists, image_dir, cache,
                                                  extractor)
  assert extractor.computed == 0 and stats['reused'] == 60
  np.testing.assert_allclose(
      vectors2[('green', 'training', lists['green']['training'][0])], first,
      rtol=1e-6)

  with open(files[0], 'w') as f:
    f.write('0.1,not-a-number,')
  lists = split.create_image_lists(image_dir)
  _, stats = bottlenecks.cache_bottlenecks(lists, image_dir, cache, extractor)
  assert extractor.computed == 1
  assert stats == dict(created=1, reused=59, corrupt=1, unreadable=0)
  assert bottlenecks.read_bottleneck(files[0]) is not None


def test_unreadable_image_is_skipped(tmp_path, extractor_dir, caplog):
  image_dir = write_folders(tmp_path / 'images', per_class=20)
  with open(os.path.join(image_dir, 'green', 'broken.png'), 'wb') as f:
    f.write(b'\x89PNG\r\n\x1a\n' + b'garbage' * 10)
  lists = split.create_image_lists(image_dir)
  _, stats = bottlenecks.cache_bottlenecks(
      lists, image_dir, str(tmp_path / 'cache'), features.FeatureExtractor(
          extractor_dir))
  assert stats['unreadable'] == 1 and stats['created'] == 60
  assert 'broken.png' in caplog.text
  assert all('broken.png' not in lists['green'][c]
             for c in ('training', 'validation', 'testing'))


def test_missing_module_messages(tmp_path):
  with pytest.raises(RetrainError, match='neither a SavedModel'):
    features.FeatureExtractor(str(tmp_path / 'nope'))
  with pytest.raises(RetrainError, match='Cannot load SavedModel'):
    features.FeatureExtractor(str(tmp_path))
  try:  # tensorflow_hub is optional (the hub extra): is it installed here?
    import tensorflow_hub  # noqa: F401  pylint: disable=unused-import
    expected = 'Cannot load TF Hub module'
  except ImportError:
    expected = 'tensorflow_hub is not installed'
  with pytest.raises(RetrainError, match=expected):
    features.FeatureExtractor('https://tfhub.invalid/none/1')


# ---- end to end through the scripts ----

@pytest.fixture(scope='module')
def retrained(tmp_path_factory, extractor_dir):
  root = tmp_path_factory.mktemp('retrain')
  image_dir = write_folders(root / 'images', per_class=30)
  args = ['--image_dir', image_dir, '--tfhub_module', extractor_dir,
          '--bottleneck_dir', root / 'cache', '--summaries_dir', root / 'logs',
          '--saved_model_dir', root / 'model', '--output_labels',
          root / 'labels.txt', '--how_many_training_steps', 300,
          '--learning_rate', 0.5, '--train_batch_size', 32,
          '--eval_step_interval', 100, '--print_misclassified_test_images']
  first = run_retraining('retrain.py', *args)
  assert first.returncode == 0, first.stderr
  return dict(root=root, image_dir=image_dir, first=first, args=args)


def test_retrain_reaches_high_accuracy_and_logs(retrained):
  out = retrained['first'].stdout
  assert 'Reused 0 cached bottlenecks, computing 90.' in out
  assert 'Step 0: Train accuracy = ' in out
  assert 'Step 299: Cross entropy = ' in out
  assert 'Validation accuracy = ' in out and '(N=' in out
  line = [l for l in out.splitlines() if l.startswith('Final test accuracy')]
  assert line, out
  accuracy = float(line[0].split('=')[1].split('%')[0])
  assert accuracy >= 90.0, out
  root = retrained['root']
  assert (root / 'labels.txt').read_text().split('\n')[:3] == [
      'blue ish', 'green', 'red things']
  for sub in ('train', 'validation'):
    assert os.listdir(root / 'logs' / sub), sub


def test_rerun_reuses_cache(retrained, run_in_process):
  args = list(retrained['args'])
  args[args.index('--saved_model_dir') + 1] = retrained['root'] / 'model2'
  args[args.index('--how_many_training_steps') + 1] = 20
  result = run_in_process('image_retraining.retrain', [str(a) for a in args])
  assert result.returncode == 0, result.stderr
  assert 'Reused 90 cached bottlenecks, computing 0.' in result.stdout


def test_label_image_in_fresh_process(retrained, tmp_path):
  rng = np.random.RandomState(7)
  path = tmp_path / 'query.png'
  path.write_bytes(tf.io.encode_png(_image((0, 1, 0), rng, size=20)).numpy())
  root = retrained['root']
  result = run_retraining('label_image.py', '--image', path, '--saved_model_dir',
                      root / 'model', '--labels', root / 'labels.txt')
  assert result.returncode == 0, result.stderr
  lines = result.stdout.strip().splitlines()
  assert lines[0].startswith('green (score = '), result.stdout
  assert len(lines) == 3
  assert float(lines[0].split('= ')[1].rstrip(')')) > 0.5


def test_label_image_bad_inputs(retrained, tmp_path, run_in_process):
  root = retrained['root']
  result = run_in_process('image_retraining.label_image', [
      '--image', str(tmp_path / 'none.png'),
      '--saved_model_dir', str(root / 'model')])
  assert result.returncode == 2
  assert result.stderr.strip().endswith('not found.')
  assert 'label_image: error: ' in result.stderr
  assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('case,message', [
    ('no_dir', 'not found'),
    # Refused before any bottleneck is computed or any step trained.
    ('model_dir_taken', "--saved_model_dir '%s' exists and is not empty"),
    ('bad_module', 'neither a SavedModel directory nor a TF Hub URL'),
    ('single', 'Only one category'),
])
def test_retrain_bad_inputs_exit_cleanly(tmp_path, extractor_dir, case,
                                         message, run_in_process):
  image_dir = tmp_path / 'images'
  module = extractor_dir
  if case == 'bad_module':
    write_folders(image_dir, per_class=20)
    module = tmp_path / 'no_such_module'
  elif case == 'single':
    write_folders(image_dir, colours={'only': (1, 0, 0)})
  elif case == 'model_dir_taken':
    write_folders(image_dir, per_class=20)
    (tmp_path / 'm').mkdir()
    (tmp_path / 'm' / 'mine.txt').write_text('an earlier model of mine')
    message %= tmp_path / 'm'
  result = run_in_process('image_retraining.retrain', [
      str(a) for a in ('--image_dir', image_dir, '--tfhub_module', module,
                       '--bottleneck_dir', tmp_path / 'cache',
                       '--saved_model_dir', tmp_path / 'm')])
  assert result.returncode == 2
  assert message in result.stderr
  if case == 'model_dir_taken':
    assert not (tmp_path / 'cache').exists()  # No work was done.
    assert os.listdir(str(tmp_path / 'm')) == ['mine.txt']
  assert 'retrain: error: ' in result.stderr
  assert 'Traceback' not in result.stderr


def test_distortions_bypass_cache_and_train(tmp_path, extractor_dir,
                                            run_in_process):
  image_dir = write_folders(tmp_path / 'images', per_class=20,
                            colours={'red': (1, 0, 0), 'blue': (0, 0, 1)})
  result = run_in_process('image_retraining.retrain', [str(a) for a in (
      '--image_dir', image_dir, '--tfhub_module', extractor_dir,
      '--bottleneck_dir', tmp_path / 'cache', '--summaries_dir', '',
      '--saved_model_dir', tmp_path / 'model', '--output_labels', '',
      '--how_many_training_steps', 10, '--train_batch_size', 4,
      '--learning_rate', 0.5, '--flip_left_right', '--random_crop', 10,
      '--random_scale', 10, '--random_brightness', 10)])
  assert result.returncode == 0, result.stderr
  assert 'computing fresh training features every step' in result.stdout
  assert 'Final test accuracy' in result.stdout
  assert os.path.isfile(tmp_path / 'model' / 'labels.txt')


def test_distort_keeps_size_and_range():
  image = tf.constant(np.random.RandomState(0).uniform(0, 1, (10, 14, 3)),
                      tf.float32)
  out = distortions.distort(image, True, 20, 20, 50,
                            np.random.RandomState(1))
  assert out.shape == (10, 14, 3)
  assert float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 1
  assert not np.allclose(out.numpy(), image.numpy())
