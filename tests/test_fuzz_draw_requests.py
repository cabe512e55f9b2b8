"""Fuzzing the draw server's request parser and images.to_mnist.

Each property: the function returns the right result or raises the module's
own error (BadRequest, ImageError) with a message; never another exception.
The Host and Origin checks answer exactly the requests that name this
machine and come from its own page.
"""
import email.message
import json
import re

from hypothesis import given, settings, strategies as st
import numpy as np

from tutorials_common.errors import UsageError
from mnist_cnn import images
from mnist_cnn import mnist_draw_server as server
from suite_helpers import slow_examples

# TensorFlow builds a graph per to_mnist call.
TF_EXAMPLES = slow_examples()


@given(st.one_of(st.text(max_size=30),
                 st.integers(-10**30, 10**30).map(str),
                 st.integers(0, server.MAX_BODY * 2).map(str),
                 st.from_regex(r'\s*0*[0-9]{1,9}\s*', fullmatch=True)))
def test_content_length_is_a_number_in_range_or_bad_request(value):
  stripped = value.strip()
  valid = (stripped.isascii() and stripped.isdigit() and
           int(stripped) <= server.MAX_BODY)
  try:
    length = server.parse_content_length(value)
  except server.BadRequest as e:
    assert str(e) and not valid, e
    return
  assert valid and length == int(stripped)


def test_a_missing_content_length_is_a_bad_request():
  try:
    server.parse_content_length(None)
  except server.BadRequest as e:
    assert 'required' in str(e)
  else:
    raise AssertionError('a missing Content-Length was accepted')


# What the Host check must answer: a local name, with or without a port.
_LOCAL_HOST = re.compile(r'(localhost|127\.0\.0\.1|\[::1\])(:[0-9]*)?')
_ALLOWED = frozenset(server.LOCAL_HOSTS)
host_values = st.one_of(
    st.text(max_size=30),
    st.from_regex(r'\s*(localhost|LocalHost|127\.0\.0\.1|\[::1\]|::1|'
                  r'\[::1|evil\.example|127\.0\.0\.2|localhost\.evil)'
                  r'(:[0-9]{0,6}|:x|:80:80|@evil)?\s*', fullmatch=True))


def _headers(**values):
  message = email.message.Message()
  for name, value in values.items():
    if value is not None:
      message[name] = value
  return message


@given(host_values)
def test_only_a_host_naming_this_machine_is_answered(host):
  refusal = server.refusal(_headers(Host=host), _ALLOWED)
  named = bool(_LOCAL_HOST.fullmatch(host.strip().lower()))
  assert (refusal is None) == named, (host, refusal)
  assert refusal is None or 'Host header' in refusal


@given(host_values, st.one_of(
    st.none(), st.text(max_size=30),
    st.sampled_from(['http://', 'https://', 'HTTP://', 'http://evil.']).map(
        lambda scheme: ('scheme', scheme))))
def test_an_origin_is_answered_only_from_the_page_itself(host, origin):
  if isinstance(origin, tuple):  # a scheme, before the request's own Host
    origin = origin[1] + host.strip()
  refusal = server.refusal(_headers(Host=host, Origin=origin), _ALLOWED)
  own = origin is None or origin.strip().lower() == 'http://' + (
      host.strip().lower())
  named = bool(_LOCAL_HOST.fullmatch(host.strip().lower()))
  assert (refusal is None) == (named and own), (host, origin, refusal)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) |
    st.dictionaries(st.text(max_size=8), children, max_size=5), max_leaves=20)
grey_levels = st.one_of(st.integers(0, 255), st.floats(0, 255))
any_number = st.one_of(st.integers(), st.floats(), grey_levels,
                       st.sampled_from([1e308, -1e308, 255.0000001, -0.0,
                                        256, -1, 10**400]))


@st.composite
def drawing_requests(draw):
  """JSON objects close to a drawing: right or wrong sizes, types, numbers."""
  width = draw(st.one_of(st.integers(1, 8), st.integers(-3, 600), json_values))
  height = draw(st.one_of(st.integers(1, 8), st.integers(-3, 600),
                          json_values))
  count = (width * height if isinstance(width, int) and
           isinstance(height, int) and 0 < width * height <= 64 else 4)
  count += draw(st.sampled_from([0, 0, 0, -1, 1]))
  pixels = draw(st.one_of(
      st.lists(grey_levels, min_size=max(count, 0), max_size=max(count, 0)),
      st.lists(st.one_of(any_number, json_values), min_size=max(count, 0),
               max_size=max(count, 0)),
      json_values))
  fields = {'width': width, 'height': height, 'pixels': pixels}
  keep = draw(st.lists(st.sampled_from(sorted(fields)), unique=True,
                       min_size=2))
  return {name: fields[name] for name in keep}


def _is_pixel(value):
  return (type(value) in (int, float) and value == value and  # not NaN
          0 <= value <= 255)


def check_drawing(body, request):
  try:
    grey = server.parse_drawing(body)
  except server.BadRequest as e:
    assert str(e)
    ok = (isinstance(request, dict) and
          all(type(request.get(k)) is int and
              1 <= request[k] <= server.MAX_SIDE for k in ('width', 'height'))
          and isinstance(request.get('pixels'), list) and
          len(request['pixels']) == request['width'] * request['height'] and
          all(_is_pixel(p) for p in request['pixels']))
    assert not ok, 'a good drawing was refused: %s' % e
    return
  assert isinstance(request, dict), 'a non-object was accepted'
  assert grey.dtype == np.float32
  assert grey.shape == (request['height'], request['width'])
  assert all(_is_pixel(p) for p in request['pixels'])
  np.testing.assert_array_equal(
      grey.ravel(), np.asarray(request['pixels'], np.float32))


@given(drawing_requests())
def test_parse_drawing_returns_the_pixels_or_bad_request(request):
  # json.dumps spells NaN and Infinity out, as a careless client might.
  check_drawing(json.dumps(request).encode(), request)


@given(json_values)
def test_parse_drawing_of_any_json(value):
  check_drawing(json.dumps(value).encode(), value)


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 st.integers(1, 20000).map(lambda n: b'[' * n),
                 st.integers(1, 20000).map(lambda n: b'{"a":' * n)))
def test_parse_drawing_of_any_bytes(body):
  try:
    request = json.loads(body)
  except (ValueError, RecursionError):
    request = None  # whatever it is, it must be refused
  check_drawing(body, request)


# --- images.to_mnist ----------------------------------------------------------

any_float = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def grey_arrays(draw):
  """Arrays of every rank and size, with ordinary, huge, tiny, NaN and inf."""
  shape = draw(st.one_of(
      st.lists(st.integers(0, 40), min_size=0, max_size=3).map(tuple),
      st.sampled_from([(1, 1), (10000, 1), (1, 10000), (512, 512), (2, 2)])))
  size = int(np.prod(shape))
  kind = draw(st.sampled_from(['grey', 'any', 'equal', 'huge', 'stroke']))
  if kind == 'equal':
    return np.full(shape, draw(any_float))
  if kind == 'stroke' or size > 2000:  # big arrays: a stroke on a background
    array = np.full(shape, draw(st.floats(0, 255)))
    if size:
      flat = array.reshape(-1)
      at = draw(st.integers(0, size - 1))
      flat[at:at + draw(st.integers(1, 50))] = draw(any_float)
    return array
  elements = {'grey': st.floats(0, 255), 'any': any_float,
              'huge': st.sampled_from([1e308, -1e308, 3.4e38, 5e-324, 0.0])}
  return np.asarray(draw(st.lists(elements[kind], min_size=size,
                                  max_size=size)), np.float64).reshape(shape)


@settings(max_examples=TF_EXAMPLES)
@given(grey_arrays())
def test_to_mnist_returns_an_mnist_digit_or_image_error(grey):
  usable = grey.ndim == 2 and grey.size > 0 and np.isfinite(grey).all()
  try:
    digit = images.to_mnist(grey)
  except images.ImageError as e:
    assert str(e) and not usable, e
    return
  assert usable
  assert digit.shape == (784,) and digit.dtype == np.float32
  assert np.isfinite(digit).all() and digit.min() >= 0 and digit.max() <= 1
  magnitude = np.abs(grey).max()
  if magnitude > 0 and np.ptp(grey / magnitude) > 1e-3:
    assert digit.max() > 0, 'a drawing with contrast lost all its ink'


def test_to_mnist_of_values_beyond_float32_keeps_the_drawing():
  # The example: finite numbers past float32 used to overflow to inf
  # and fail with IndexError.
  grey = np.full((28, 28), 1e308)
  grey[4:24, 12:16] = 0
  digit = images.to_mnist(grey).reshape(28, 28)
  assert digit.max() == 1 and digit[:, :8].max() == 0


def test_to_mnist_of_non_numbers_is_an_image_error():
  for bad in ([['a', 'b']], [[None]], [[1, 2], [3]]):
    try:
      images.to_mnist(bad)
    except images.ImageError as e:
      assert str(e)
    else:
      raise AssertionError('%r was accepted' % (bad,))


def test_image_errors_are_usage_errors():
  assert issubclass(images.ImageError, UsageError)
