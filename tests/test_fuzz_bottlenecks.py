"""Fuzzing the bottleneck cache reader: random text and bytes in a cache file.

The property: read_bottleneck returns exactly the finite vector the file
spells, or None (the caller recomputes it); never an exception. And what
write_bottleneck writes reads back bit for bit.
"""
import os
import tempfile

from hypothesis import given, strategies as st
import numpy as np

from image_retraining import bottlenecks

numbers = st.one_of(
    st.floats(width=32), st.floats(),
    st.sampled_from(['nan', 'inf', '-inf', 'Infinity', '1e39', '-1e39',
                     '1_0', '0x10', ' 1 ', '', '1e-50', '3.4028236e38']))


def _spell(value):
  return value if isinstance(value, str) else repr(value)


cache_texts = st.one_of(
    st.text(max_size=100),
    st.lists(numbers, max_size=20).map(lambda v: ','.join(map(_spell, v))),
    st.tuples(st.lists(st.floats(width=32, allow_nan=False,
                                 allow_infinity=False), min_size=1,
                       max_size=20),
              st.sampled_from(['', '\n', ' ', ',', '\n\n'])).map(
                  lambda t: ','.join(map(repr, t[0])) + t[1]))


def expected_vector(text):
  """The vector the cache file spells, or None if it spells none."""
  try:
    values = [float(x) for x in text.strip().split(',')]
  except ValueError:
    return None
  with np.errstate(over='ignore'):
    vector = np.asarray(values, np.float32)
  if not np.isfinite(vector).all():  # includes values beyond float32
    return None
  return vector


def _read(data):
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, 'image.jpg_module.txt')
    with open(path, 'wb') as f:
      f.write(data)
    return bottlenecks.read_bottleneck(path)


@given(cache_texts)
def test_read_bottleneck_returns_the_vector_or_none(text):
  data = text.encode('utf-8', 'surrogatepass')
  try:
    text = data.decode('utf-8')
  except UnicodeDecodeError:
    text = None
  expected = None if text is None else expected_vector(text)
  vector = _read(data)
  if expected is None:
    assert vector is None, 'a corrupt cache file was used: %r' % (text,)
  else:
    assert vector is not None, 'a good cache file was refused: %r' % (text,)
    assert vector.dtype == np.float32
    np.testing.assert_array_equal(vector, expected)


@given(st.binary(max_size=100))
def test_read_bottleneck_of_random_bytes(data):
  vector = _read(data)
  if vector is not None:
    assert vector.dtype == np.float32 and vector.ndim == 1 and vector.size
    assert np.isfinite(vector).all()


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False),
                min_size=1, max_size=50))
def test_written_bottleneck_reads_back_exactly(values):
  vector = np.asarray(values, np.float32)
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, 'label', 'image.jpg_module.txt')
    bottlenecks.write_bottleneck(path, vector)
    np.testing.assert_array_equal(bottlenecks.read_bottleneck(path), vector)


def test_non_finite_cache_values_are_recomputed(tmp_path):
  # Found by the fuzzer: '3.4028235677973366e+38' (just past float32's
  # largest) read back as inf; 'nan' and 'inf' parsed as floats too, so a
  # damaged cache file fed NaN or infinity into training.
  for text in ('3.4028235677973366e+38', '0.5,nan', 'inf,1', '1e39',
               '0.1,-Infinity'):
    path = tmp_path / 'cache.txt'
    path.write_text(text)
    assert bottlenecks.read_bottleneck(str(path)) is None, text


def test_a_float32_survives_the_cache_bit_for_bit(tmp_path):
  # Found by the fuzzer (a long run): '%.8g' is one digit short of what a
  # float32 needs, so 1078281335996416.0 came back as another float32; so did
  # about one value in 200 of a normal distribution, e.g. 0.12167501.
  vector = np.array([1078281335996416.0, 0.12167501449584961], np.float32)
  path = str(tmp_path / 'label' / 'cache.txt')
  bottlenecks.write_bottleneck(path, vector)
  np.testing.assert_array_equal(bottlenecks.read_bottleneck(path), vector)
