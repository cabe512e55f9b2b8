"""The draw-a-digit server answers every request, through real connections.

Each test talks HTTP to a server on 127.0.0.1 with a trained checkpoint:
malformed lengths and pixels get a 400 with a message, a body that never
arrives a 408 after the read timeout, a crowd a 503, a model failure a 500;
idle connections and slow clients cannot pin it (a request takes a
prediction slot only once its body is there). Every socket has a timeout, so a test that
goes wrong fails instead of hanging.
"""
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from hypothesis import given, settings, strategies as st
import pytest

import cifar_fixtures
from mnist_cnn import mnist_draw_server
from suite_helpers import slow_examples

READ_TIMEOUT = 1.0  # seconds; short, so that the timeout tests are quick
SOCKET_TIMEOUT = 30  # seconds a test waits for any answer before failing
ONE_PIXEL = json.dumps({'width': 1, 'height': 1, 'pixels': [0]}).encode()


def _start(checkpoint_dir, **options):
  server = mnist_draw_server.make_server(checkpoint_dir, 0, **options)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  return server


def _stop(server):
  server.shutdown()
  server.server_close()


@pytest.fixture(scope='module')
def server(mnist_trained):
  """Read timeout 1 s, one prediction at a time."""
  server = _start(mnist_trained['checkpoint_dir'], read_timeout=READ_TIMEOUT,
                  max_requests=1)
  yield server
  _stop(server)


def _connect(server):
  return socket.create_connection(('127.0.0.1', server.server_address[1]),
                                  timeout=SOCKET_TIMEOUT)


def _request(headers, body=b''):
  lines = ['POST /predict HTTP/1.1', 'Host: 127.0.0.1'] + [
      '%s: %s' % header for header in headers]
  return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body


def _answer(sock):
  """(status, JSON answer) read from a connected socket."""
  response = http.client.HTTPResponse(sock)
  response.begin()
  return response.status, json.loads(response.read())


def _send(server, headers, body=b''):
  with _connect(server) as sock:
    sock.sendall(_request(headers, body))
    return _answer(sock)


def _post(server, body):
  return _send(server, [('Content-Length', len(body))], body)


def _drawing(pixels, width, height):
  return json.dumps({'width': width, 'height': height,
                     'pixels': pixels}).encode()


def _still_serves(server):
  status, answer = _post(server, ONE_PIXEL)
  assert status == 200, answer
  assert len(answer['probabilities']) == 10


@pytest.mark.parametrize('headers, message', [
    ([('Content-Length', '-5')], 'whole number of bytes'),
    ([('Content-Length', 'five')], 'whole number of bytes'),
    ([('Content-Length', '1_0')], 'whole number of bytes'),
    ([('Content-Length', '')], 'whole number of bytes'),
    ([], 'Content-Length header is required'),
    ([('Content-Length', '9' * 5000)], 'too large'),
])
def test_bad_content_length_gets_a_400_with_a_message(server, headers,
                                                       message):
  # '-5' ended the handler in "read length must be non-negative" and the
  # client got no answer; '9' * 5000 is past int()'s 4300-digit limit.
  status, answer = _send(server, headers)
  assert status == 400 and message in answer['error'], answer
  _still_serves(server)


@pytest.mark.parametrize('value', [1e308, -1, 256, 255.5, 10**400])
def test_pixels_outside_0_255_get_a_400_that_says_the_range(server, value):
  # 512 x 512 of 1e308 passed the finite-number check, overflowed to inf in
  # float32 and made images.to_mnist fail with IndexError: no answer.
  side = 512 if value == 1e308 else 2
  pixels = [0] * (side * side - 1) + [value]
  status, answer = _post(server, _drawing(pixels, side, side))
  assert status == 400, answer
  assert 'from 0 to 255' in answer['error']
  assert 'pixel %d' % (side * side - 1) in answer['error']
  _still_serves(server)


@pytest.mark.parametrize('body, message', [
    (b'[' * 100000, 'not JSON'),  # nesting past Python's recursion limit
    (b'{"width": 1, "height": 1, "pixels": [NaN]}', 'from 0 to 255'),
    (b'{"width": 1, "height": 1, "pixels": [-Infinity]}', 'from 0 to 255'),
    (b'\xff\xfe not UTF-8', 'not JSON'),
])
def test_other_unusable_bodies_get_a_400(server, body, message):
  status, answer = _post(server, body)
  assert status == 400 and message in answer['error'], answer


def test_a_blank_drawing_is_answered(server):
  status, answer = _post(server, _drawing([255] * 16, 4, 4))
  assert status == 200
  assert abs(sum(answer['probabilities']) - 1) < 1e-4


def test_a_body_shorter_than_its_length_gets_a_408_after_the_timeout(server):
  # Used to hold a handler thread forever.
  with _connect(server) as sock:
    start = time.time()
    sock.sendall(_request([('Content-Length', 100)], b'{"width": 1'))
    status, answer = _answer(sock)
    waited = time.time() - start
  assert status == 408, answer
  assert '100 bytes' in answer['error']
  assert READ_TIMEOUT * 0.9 <= waited < SOCKET_TIMEOUT
  _still_serves(server)


def test_a_body_cut_short_by_the_client_gets_a_400(server):
  with _connect(server) as sock:
    sock.sendall(_request([('Content-Length', 100)], b'{"width": 1'))
    sock.shutdown(socket.SHUT_WR)
    status, answer = _answer(sock)
  assert status == 400 and 'ended after 11 of the 100 bytes' in answer['error']


def test_idle_connections_do_not_pin_the_server(server):
  idle = [_connect(server) for _ in range(12)]
  try:
    _still_serves(server)  # answered while twelve connections say nothing
    for sock in idle:  # and the server drops each after its read timeout
      assert sock.recv(1024) == b''
  finally:
    for sock in idle:
      sock.close()


def test_requests_beyond_the_cap_get_a_503_and_the_server_recovers(
    server, monkeypatch):
  # One prediction at a time (the fixture's cap): hold it in the model.
  inside, release = threading.Event(), threading.Event()
  real_look_at = mnist_draw_server.mnist_model.look_at

  def slow_look_at(*args):
    inside.set()
    release.wait(SOCKET_TIMEOUT)
    return real_look_at(*args)

  monkeypatch.setattr(mnist_draw_server.mnist_model, 'look_at', slow_look_at)
  holder = _connect(server)
  try:
    holder.sendall(_request([('Content-Length', len(ONE_PIXEL))], ONE_PIXEL))
    assert inside.wait(SOCKET_TIMEOUT), 'the held request never started'
    status, answer = _post(server, ONE_PIXEL)
    assert status == 503 and 'busy' in answer['error'], answer
    release.set()
    assert _answer(holder)[0] == 200  # the held one is answered
  finally:
    release.set()
    holder.close()
  monkeypatch.undo()
  _still_serves(server)


def _rss_mib():
  with open('/proc/self/status') as f:
    return int(re.search(r'VmRSS:\s+(\d+)', f.read()).group(1)) / 1024.0


@pytest.mark.parametrize('crowd', [40, 200])
def test_slow_clients_cannot_keep_a_drawing_out(mnist_trained, crowd):
  """A crowd that sends headers and one byte of a 1000-byte body: the
  others are still answered at once, and the crowd gets 408s."""
  server = _start(mnist_trained['checkpoint_dir'], read_timeout=3.0)
  slow = []
  try:
    _still_serves(server)  # warmed up: the first prediction builds caches
    memory_before = _rss_mib()
    for _ in range(crowd):
      sock = _connect(server)
      sock.sendall(_request([('Content-Length', 1000)], b'{'))
      slow.append(sock)
    deadline = time.time() + SOCKET_TIMEOUT
    while server.body_bytes.active < crowd * 1000:  # all being received
      assert time.time() < deadline, (server.body_bytes.active,
                                      server.connections.active)
      time.sleep(0.01)
    start = time.time()
    status, answer = _post(server, _drawing([255] * 16, 4, 4))
    assert status == 200 and time.time() - start < 1.0, answer
    for body in (b'{"width": 1}', b'\xff\x00', b'[1, 2, 3]', b'{"pixels": 7}'):
      status, answer = _post(server, body)
      assert status == 400 and answer['error'], (body, answer)
    assert server.requests.active == 0  # the crowd holds no prediction slot
    # A thread and a 1000-byte reservation each: a few MiB, not the crowd's
    # announced bodies times anything.
    assert _rss_mib() - memory_before < 64
    for sock in slow:
      assert _answer(sock)[0] == 408
  finally:
    for sock in slow:
      sock.close()
    _stop(server)


def test_past_the_connection_limit_a_client_gets_a_503_at_once(mnist_trained):
  server = _start(mnist_trained['checkpoint_dir'], read_timeout=READ_TIMEOUT,
                  max_connections=3)
  idle = [_connect(server) for _ in range(3)]
  try:
    deadline = time.time() + SOCKET_TIMEOUT
    while server.connections.active < 3:
      assert time.time() < deadline
      time.sleep(0.01)
    with _connect(server) as sock:
      start = time.time()
      status, answer = _answer(sock)
    assert status == 503 and 'too many open connections' in answer['error']
    assert time.time() - start < READ_TIMEOUT
  finally:
    for sock in idle:
      sock.close()
  try:
    # Once the idle ones are gone: their handlers see the close and leave,
    # which on a busy machine takes a moment.
    deadline = time.time() + SOCKET_TIMEOUT
    while server.connections.active >= 3:
      assert time.time() < deadline, server.connections.active
      time.sleep(0.01)
    _still_serves(server)
  finally:
    _stop(server)


def test_bodies_past_the_byte_budget_get_a_503(mnist_trained):
  server = _start(mnist_trained['checkpoint_dir'], read_timeout=READ_TIMEOUT,
                  max_body_bytes=1500)
  try:
    with _connect(server) as holder:
      holder.sendall(_request([('Content-Length', 1000)], b'{'))
      deadline = time.time() + SOCKET_TIMEOUT
      while server.body_bytes.active < 1000:
        assert time.time() < deadline
        time.sleep(0.01)
      status, answer = _send(server, [('Content-Length', 1000)], b'{' * 1000)
      assert status == 503 and 'too many drawings' in answer['error'], answer
      status, _ = _post(server, ONE_PIXEL)  # 30 bytes still fit
      assert status == 200
  finally:
    _stop(server)


def test_close_waits_for_the_prediction_in_flight_then_refuses(
    mnist_trained, monkeypatch):
  """What Ctrl-C runs: close() returns only once no prediction is inside
  TensorFlow (exiting with one there aborts the process), and a drawing
  whose body was still arriving gets a 503 instead of a prediction."""
  # A read timeout that outlasts the test: the half-sent body waits.
  server = _start(mnist_trained['checkpoint_dir'], read_timeout=SOCKET_TIMEOUT)
  look_at = mnist_draw_server.mnist_model.look_at
  inside = threading.Event()

  def slow_look_at(*args):
    inside.set()
    time.sleep(0.5)
    return look_at(*args)

  monkeypatch.setattr(mnist_draw_server.mnist_model, 'look_at', slow_look_at)
  answers = []
  still_sending = _connect(server)
  try:
    still_sending.sendall(_request([('Content-Length', len(ONE_PIXEL))],
                                   ONE_PIXEL[:5]))
    deadline = time.time() + SOCKET_TIMEOUT
    while server.body_bytes.active < len(ONE_PIXEL):  # its thread reads it
      assert time.time() < deadline
      time.sleep(0.01)
    in_flight = threading.Thread(
        target=lambda: answers.append(_post(server, ONE_PIXEL)))
    in_flight.start()
    assert inside.wait(SOCKET_TIMEOUT)
    server.shutdown()
    server.close()
    assert server.requests.active == 0
    assert server.sess._closed  # pylint: disable=protected-access
    in_flight.join(SOCKET_TIMEOUT)
    assert answers and answers[0][0] == 200, answers
    still_sending.sendall(ONE_PIXEL[5:])
    status, answer = _answer(still_sending)
    assert status == 503 and 'stopping' in answer['error'], answer
  finally:
    still_sending.close()


def test_a_failure_in_the_model_gets_a_500_with_one_line(mnist_trained):
  broken = _start(mnist_trained['checkpoint_dir'], read_timeout=READ_TIMEOUT)
  try:
    broken.sess.close()  # every prediction now fails inside TensorFlow
    status, answer = _post(broken, ONE_PIXEL)
  finally:
    _stop(broken)
  assert status == 500
  assert answer['error'].startswith('The model could not predict: ')
  assert '\n' not in answer['error']


def test_the_command_serves_a_drawing_and_stops_on_ctrl_c(mnist_trained):
  """mnist_draw_server.py as a user types it: --port 0 takes a free port,
  which its one line names; the page and a drawing are answered over
  127.0.0.1; Ctrl-C (SIGINT) ends it with status 0, no traceback."""
  # PYTHONFAULTHANDLER: should it not stop, SIGABRT below makes it print
  # where each of its threads is.
  env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONFAULTHANDLER='1')
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # As a user has it.
  command = subprocess.Popen(
      [sys.executable, os.path.join('mnist_cnn', 'mnist_draw_server.py'),
       '--checkpoint_dir', mnist_trained['checkpoint_dir'], '--port', '0'],
      cwd=cifar_fixtures.REPO_ROOT, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  try:
    ready, _, _ = select.select([command.stdout], [], [], 120)
    assert ready, 'the server printed no address within 120 s'
    first = command.stdout.readline()
    address = re.match(r'^Serving the draw-a-digit page on '
                       r'http://127\.0\.0\.1:(\d+)/\n$', first)
    assert address, (first, command.poll())
    port = int(address.group(1))
    assert port > 0
    connection = http.client.HTTPConnection('127.0.0.1', port,
                                            timeout=SOCKET_TIMEOUT)
    connection.request('GET', '/')
    page = connection.getresponse()
    assert page.status == 200
    assert page.getheader('Content-Type').startswith('text/html')
    assert '<title>Draw a digit</title>' in page.read().decode()
    stroke = [0] * (28 * 28)
    for row in range(4, 24):
      stroke[row * 28 + 14] = 255
    connection.request('POST', '/predict', _drawing(stroke, 28, 28),
                       {'Content-Type': 'application/json'})
    answer = connection.getresponse()
    assert answer.status == 200
    probabilities = json.loads(answer.read())['probabilities']
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-4
    connection.close()
    command.send_signal(signal.SIGINT)
    try:
      stdout, stderr = command.communicate(timeout=SOCKET_TIMEOUT)
    except subprocess.TimeoutExpired:
      command.send_signal(signal.SIGABRT)
      _, stderr = command.communicate(timeout=SOCKET_TIMEOUT)
      raise AssertionError('Still running %d s after Ctrl-C; its threads:\n%s'
                           % (SOCKET_TIMEOUT, stderr[-6000:])) from None
  finally:
    if command.poll() is None:
      command.kill()
      command.wait()
  assert command.returncode == 0, stderr
  assert first + stdout == first  # Its one line, nothing after Ctrl-C.
  assert 'Traceback' not in stderr
  assert not cifar_fixtures.TENSORFLOW_NOISE.findall(stderr), stderr
  # Nothing on stderr but the two requests' log lines.
  requests = stderr.splitlines()
  assert len(requests) == 2, stderr
  assert '"GET / HTTP/1.1" 200' in requests[0]
  assert '"POST /predict HTTP/1.1" 200' in requests[1]


# --- Fuzzing the whole request path: any header value, any body -------------

header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126),
                      max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) |
    st.dictionaries(st.text(max_size=8), children, max_size=5), max_leaves=20)


@st.composite
def drawings(draw):
  width, height = draw(st.integers(1, 6)), draw(st.integers(1, 6))
  fields = {
      'width': draw(st.one_of(st.just(width), json_values)),
      'height': draw(st.one_of(st.just(height), json_values)),
      'pixels': draw(st.one_of(
          st.lists(st.one_of(st.integers(0, 255), st.floats(0, 255), json_values),
                   min_size=width * height, max_size=width * height),
          json_values))}
  keep = draw(st.lists(st.sampled_from(sorted(fields)), unique=True))
  return json.dumps({name: fields[name] for name in keep}).encode()


@settings(max_examples=slow_examples())
@given(body=st.one_of(drawings(), st.binary(max_size=200),
                      json_values.map(lambda v: json.dumps(v).encode())),
       length=st.one_of(st.none(), header_text))
def test_every_request_gets_a_json_answer(server, body, length):
  # length None: the right Content-Length; otherwise any printable value.
  # A value naming more bytes than are sent waits out the read timeout.
  headers = [('Content-Length', len(body) if length is None else length)]
  status, answer = _send(server, headers, body)
  assert status in (200, 400, 408), answer
  if status == 200:
    assert abs(sum(answer['probabilities']) - 1) < 1e-4
  else:
    assert answer['error'] and '\n' not in answer['error']
