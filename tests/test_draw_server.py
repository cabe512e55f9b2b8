"""The draw-a-digit server answers every request, through real connections.

Each test talks HTTP to a server on 127.0.0.1 with a trained checkpoint:
malformed lengths and pixels get a 400 with a message, a body that never
arrives a 408 after the read timeout, a crowd a 503, a model failure a 500;
idle connections and slow clients cannot pin it (a request takes a
prediction slot only once its body is there, and when connections or body
bytes run out the client sending longest gives way); a Host that does not
name the server, another site's Origin and a body that is not
application/json are refused; a client that hangs up leaves a log line at
most. Every socket has a timeout, so a test that goes wrong fails instead of
hanging.
"""
import http.client
import itertools
import json
import os
import re
import select
import signal
import socket
import struct
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


def _request(headers, body=b'', method='POST', path='/predict'):
  """A request's bytes. Host 127.0.0.1 and Content-Type application/json
  unless headers has its own (a value of None: no such header)."""
  named = {name.lower() for name, _ in headers}
  defaults = [(name, value) for name, value in (
      ('Host', '127.0.0.1'), ('Content-Type', 'application/json'))
              if name.lower() not in named]
  lines = ['%s %s HTTP/1.1' % (method, path)] + [
      '%s: %s' % (name, value) for name, value in defaults + list(headers)
      if value is not None]
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


def _post(server, body, headers=()):
  return _send(server, [('Content-Length', len(body))] + list(headers), body)


def _wait_for(condition, what):
  """Polls condition() until it holds; fails after SOCKET_TIMEOUT seconds."""
  deadline = time.monotonic() + SOCKET_TIMEOUT
  while not condition():
    assert time.monotonic() < deadline, what
    time.sleep(0.01)


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


def _hold_the_model(monkeypatch):
  """(inside, release): events of a model that, asked for a prediction,
  sets inside and waits for release before it answers."""
  inside, release = threading.Event(), threading.Event()
  real_look_at = mnist_draw_server.mnist_model.look_at

  def slow_look_at(*args):
    inside.set()
    release.wait(SOCKET_TIMEOUT)
    return real_look_at(*args)

  monkeypatch.setattr(mnist_draw_server.mnist_model, 'look_at', slow_look_at)
  return inside, release


def test_requests_beyond_the_cap_get_a_503_and_the_server_recovers(
    server, monkeypatch):
  # One prediction at a time (the fixture's cap): hold it in the model.
  inside, release = _hold_the_model(monkeypatch)
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
    _wait_for(lambda: server.arrivals.bodies == crowd,  # all arriving
              (server.arrivals.bodies, server.arrivals.connections))
    start = time.time()
    status, answer = _post(server, _drawing([255] * 16, 4, 4))
    assert status == 200 and time.time() - start < 1.0, answer
    for body in (b'{"width": 1}', b'\xff\x00', b'[1, 2, 3]', b'{"pixels": 7}'):
      status, answer = _post(server, body)
      assert status == 400 and answer['error'], (body, answer)
    assert server.requests.active == 0  # the crowd holds no prediction slot
    # A thread and the byte it sent each: a few MiB, not the crowd's
    # announced bodies times anything.
    assert _rss_mib() - memory_before < 64
    for sock in slow:
      assert _answer(sock)[0] == 408
  finally:
    for sock in slow:
      sock.close()
    _stop(server)


def _stroke():
  """A 28 x 28 drawing of a '1', as the page would post it (2,400 bytes)."""
  pixels = [0] * (28 * 28)
  for row in range(4, 24):
    pixels[row * 28 + 14] = 255
  return _drawing(pixels, 28, 28)


def _unanswered(socks):
  """Whether none of socks has an answer (or a close) waiting."""
  return select.select(socks, [], [], 0)[0] == []


def test_slow_clients_announcing_the_largest_bodies_cannot_keep_a_drawing_out(
    mnist_trained):
  """32 clients announce the largest body allowed and trickle it a few bytes
  at a time, with every limit at its default: for well over a second, each
  drawing is answered within a second, and the crowd is not refused either.
  (Counting announced bytes, the first 16 filled the byte budget.)"""
  # A read timeout that outlasts the measurement: the crowd stays.
  server = _start(mnist_trained['checkpoint_dir'], read_timeout=4.0)
  crowd, stop = [], threading.Event()

  def trickle():
    while not stop.wait(0.05):
      for sock in crowd:
        try:
          sock.send(b'0,')
        except OSError:  # answered and closed: the assertions catch it
          pass

  trickler = threading.Thread(target=trickle, daemon=True)
  try:
    _still_serves(server)  # warmed up: the first prediction builds caches
    for _ in range(32):
      sock = _connect(server)
      sock.sendall(_request([('Content-Length', mnist_draw_server.MAX_BODY)],
                            b'['))
      crowd.append(sock)
    trickler.start()
    waits, end = [], time.monotonic() + 1.5
    while time.monotonic() < end:
      start = time.monotonic()
      status, answer = _post(server, _stroke())
      waits.append(time.monotonic() - start)
      assert status == 200, answer
    assert max(waits) < 1.0, waits
    assert _unanswered(crowd)  # all still arriving: none was pushed out
  finally:
    stop.set()
    if trickler.is_alive():
      trickler.join(SOCKET_TIMEOUT)
    for sock in crowd:
      sock.close()
    _stop(server)


def test_when_body_bytes_run_out_the_client_sending_longest_gives_way(
    mnist_trained):
  """Clients that send most of a body, then stop, hold those bytes only
  until a drawing needs them: then the one that has been sending longest
  gets a 503 and the drawing its answer."""
  server = _start(mnist_trained['checkpoint_dir'], read_timeout=4.0,
                  max_body_bytes=1000000)
  part = b'[' + b'0,' * 79999 + b'0'  # 160,000 bytes of a 200,000-byte body
  holders = []
  try:
    for count in range(1, 7):  # one at a time: the first is the oldest
      sock = _connect(server)
      sock.sendall(_request([('Content-Length', 200000)], part))
      holders.append(sock)
      _wait_for(lambda: server.arrivals.body_bytes == count * len(part),
                server.arrivals.body_bytes)
    drawing = _drawing([255] * 10000, 100, 100)
    assert len(drawing) > 1000000 - 6 * len(part)  # more than is left
    start = time.monotonic()
    status, answer = _post(server, drawing)
    assert status == 200 and time.monotonic() - start < 1.0, answer
    status, answer = _answer(holders[0])
    assert status == 503 and 'too many drawings' in answer['error'], answer
    assert _unanswered(holders[1:])
    assert server.arrivals.body_bytes == 5 * len(part)
  finally:
    for sock in holders:
      sock.close()
    _stop(server)


def test_at_the_connection_limit_the_client_waiting_longest_gives_way(
    mnist_trained):
  """At max_connections, clients that say nothing or trickle a body cannot
  keep a drawing out, though more keep coming: each drawing's connection
  pushes out the one that has waited longest (an idle one is closed, one
  sending a body gets a 503)."""
  server = _start(mnist_trained['checkpoint_dir'], read_timeout=4.0,
                  max_connections=4)
  idle, slow = [], []

  def add_slow():
    sock = _connect(server)
    sock.sendall(_request([('Content-Length', mnist_draw_server.MAX_BODY)],
                          b'['))
    slow.append(sock)

  try:
    for _ in range(2):
      idle.append(_connect(server))
      _wait_for(lambda: server.arrivals.connections == len(idle),
                server.arrivals.connections)
    for _ in range(2):
      add_slow()
      _wait_for(lambda: server.arrivals.bodies == len(slow),
                server.arrivals.bodies)
    gone = []
    for oldest in idle + slow[:1]:
      start = time.monotonic()
      status, answer = _post(server, _stroke())
      assert status == 200 and time.monotonic() - start < 1.0, answer
      if oldest in idle:  # said nothing: closed, at once
        assert oldest.recv(1024) == b''
      else:
        status, answer = _answer(oldest)
        assert status == 503 and 'too many drawings' in answer['error']
      assert time.monotonic() - start < 1.0
      gone.append(oldest)
      assert _unanswered([sock for sock in idle + slow if sock not in gone])
      add_slow()  # another takes its place: the limit stays full
      _wait_for(lambda: (server.arrivals.connections == 4 and
                         server.arrivals.bodies ==
                         len([s for s in slow if s not in gone])),
                (server.arrivals.connections, server.arrivals.bodies))
  finally:
    for sock in idle + slow:
      sock.close()
    _stop(server)


def test_past_the_connection_limit_with_all_being_answered_a_503_at_once(
    mnist_trained, monkeypatch):
  """Connections being answered do not give way: past the limit of those,
  a newcomer is told to retry at once."""
  server = _start(mnist_trained['checkpoint_dir'], read_timeout=READ_TIMEOUT,
                  max_connections=1)
  inside, release = _hold_the_model(monkeypatch)
  try:
    with _connect(server) as holder:
      holder.sendall(_request([('Content-Length', len(ONE_PIXEL))], ONE_PIXEL))
      assert inside.wait(SOCKET_TIMEOUT), 'the held request never started'
      with _connect(server) as sock:
        start = time.monotonic()
        status, answer = _answer(sock)
      assert status == 503 and 'too many open connections' in answer['error']
      assert time.monotonic() - start < READ_TIMEOUT
      release.set()
      assert _answer(holder)[0] == 200
    monkeypatch.undo()
    _wait_for(lambda: server.arrivals.connections == 0,
              server.arrivals.connections)
    _still_serves(server)
  finally:
    release.set()
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
    _wait_for(lambda: server.arrivals.body_bytes == 5,  # its thread reads it
              server.arrivals.body_bytes)
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


# --- Who is answered: Host, Origin, Content-Type; clients that hang up -------

def _exchange(server, request, address='127.0.0.1'):
  """(status, body bytes) of one request's bytes, sent on a new connection."""
  with socket.create_connection((address, server.server_address[1]),
                                timeout=SOCKET_TIMEOUT) as sock:
    sock.sendall(request)
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read()


def _page_and_drawing(server, headers, address='127.0.0.1'):
  """The statuses of GET / and of a drawing's POST, with these headers."""
  page, _ = _exchange(server, _request(headers, method='GET', path='/'),
                      address)
  drawing, _ = _exchange(server, _request(
      headers + [('Content-Length', len(ONE_PIXEL))], ONE_PIXEL), address)
  return page, drawing


@pytest.mark.parametrize('hosts', [
    ['evil.example'], ['evil.example:{port}'],
    ['localhost.evil.example:{port}'], ['127.0.0.1.nip.io:{port}'],
    ['127.0.0.2:{port}'], ['[::2]:{port}'], ['::1'], ['[::1'],
    ['localhost:{port}:{port}'], ['localhost:http'], [''], [],
    ['127.0.0.1', 'evil.example'],
])
def test_a_host_that_does_not_name_the_server_gets_a_403(server, hosts):
  # A page on another site that rebinds its name to 127.0.0.1 sends that
  # name: it reads neither the page nor a prediction.
  port = server.server_address[1]
  headers = [('Host', host.format(port=port)) for host in hosts] or [
      ('Host', None)]
  request = _request(headers + [('Content-Length', len(ONE_PIXEL))], ONE_PIXEL)
  status, body = _exchange(server, request)
  assert status == 403 and b'Host header must name this server' in body, body
  assert _page_and_drawing(server, headers) == (403, 403)


@pytest.mark.parametrize('host', [
    'localhost', 'localhost:{port}', 'LocalHost:{port}', '127.0.0.1',
    '127.0.0.1:{port}', '[::1]', '[::1]:{port}', 'localhost:',
])
def test_a_host_naming_the_server_is_answered(server, host):
  headers = [('Host', host.format(port=server.server_address[1]))]
  assert _page_and_drawing(server, headers) == (200, 200)


def test_the_address_it_listens_on_is_a_name_it_answers_to(mnist_trained):
  # --host's value: here 127.0.0.2, another of this machine's addresses.
  server = _start(mnist_trained['checkpoint_dir'], host='127.0.0.2',
                  read_timeout=READ_TIMEOUT)
  port = server.server_address[1]
  try:
    for host, statuses in (('127.0.0.2:%d' % port, (200, 200)),
                           ('127.0.0.2', (200, 200)),
                           ('localhost:%d' % port, (200, 200)),
                           ('127.0.0.3:%d' % port, (403, 403))):
      assert _page_and_drawing(server, [('Host', host)],
                               address='127.0.0.2') == statuses, host
  finally:
    _stop(server)


def test_it_listens_on_the_ipv6_loopback_address(mnist_trained):
  try:
    server = _start(mnist_trained['checkpoint_dir'], host='::1',
                    read_timeout=READ_TIMEOUT)
  except OSError as e:
    pytest.skip('no IPv6 loopback here: %s' % e)
  port = server.server_address[1]
  try:
    for host in ('[::1]:%d' % port, 'localhost:%d' % port):
      origin = 'http://' + host
      assert _page_and_drawing(server, [('Host', host), ('Origin', origin)],
                               address='::1') == (200, 200), host
  finally:
    _stop(server)


def test_an_empty_host_flag_is_a_one_line_error(run_in_process):
  # An empty address would listen on every one this machine has.
  result = run_in_process('mnist_cnn.mnist_draw_server', ['--host='])
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert result.stderr.count('\n') == 1, result.stderr
  assert '--host must name an address to listen on' in result.stderr


@pytest.mark.parametrize('origin', [
    'http://evil.example', 'null', 'http://127.0.0.1:{other}',
    'https://127.0.0.1:{port}', 'http://localhost:{port}', 'http://127.0.0.1',
    'http://127.0.0.1:{port}.evil.example', 'http://127.0.0.1:{port}/', '',
])
def test_a_request_from_another_origin_gets_a_403(server, origin):
  port = server.server_address[1]
  origin = origin.format(port=port, other=port % 65535 + 1)
  headers = [('Host', '127.0.0.1:%d' % port), ('Origin', origin)]
  # Also as the text/plain post any page may send without asking first.
  for content_type in ('application/json', 'text/plain'):
    status, answer = _post(server, ONE_PIXEL,
                           headers + [('Content-Type', content_type)])
    assert status == 403 and 'another site' in answer['error'], answer
  assert _page_and_drawing(server, headers) == (403, 403)


@pytest.mark.parametrize('host, origin', [
    ('127.0.0.1:{port}', 'http://127.0.0.1:{port}'),
    ('localhost:{port}', 'http://localhost:{port}'),
    ('[::1]:{port}', 'http://[::1]:{port}'),
    ('127.0.0.1:{port}', None),  # not from a page: curl, a script
])
def test_the_page_own_origin_is_answered(server, host, origin):
  port = server.server_address[1]
  headers = [('Host', host.format(port=port)),
             ('Origin', origin and origin.format(port=port))]
  assert _page_and_drawing(server, headers) == (200, 200)


@pytest.mark.parametrize('content_type', [
    None, '', 'text/plain', 'text/plain;charset=UTF-8',
    'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
    'application/jsonp', 'application/json-seq', 'json',
])
def test_predict_takes_only_application_json(server, content_type):
  # text/plain, forms and multipart are what a page on any site may post
  # without asking the server first; a drawing is JSON.
  status, answer = _post(server, ONE_PIXEL, [('Content-Type', content_type)])
  assert status == 415 and 'application/json' in answer['error'], answer


@pytest.mark.parametrize('content_type', [
    'application/json; charset=utf-8', 'Application/JSON'])
def test_json_with_parameters_or_capitals_is_json(server, content_type):
  status, answer = _post(server, ONE_PIXEL, [('Content-Type', content_type)])
  assert status == 200, answer


def _handler_threads():
  return {thread for thread in threading.enumerate()
          if thread.name.endswith('(process_request_thread)')}


def _hang_up(sock):
  """Closes with a reset, not a goodbye: the server's next read or write on
  the connection fails."""
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
  sock.close()


def test_clients_that_hang_up_leave_a_line_at_most_and_no_traceback(
    mnist_trained, monkeypatch, capsys):
  server = _start(mnist_trained['checkpoint_dir'], read_timeout=READ_TIMEOUT)
  before = _handler_threads()
  inside, release = _hold_the_model(monkeypatch)
  clients = itertools.count(1)
  try:
    # Gone while the model works: the answer meets the reset.
    sock = _connect(server)
    next(clients)
    sock.sendall(_request([('Content-Length', len(ONE_PIXEL))], ONE_PIXEL))
    assert inside.wait(SOCKET_TIMEOUT)
    _hang_up(sock)
    release.set()
    for _ in range(10):  # gone mid-body, or as soon as the drawing is sent
      for request in (_request([('Content-Length', 100)], b'{"wid'),
                      _request([('Content-Length', len(ONE_PIXEL))],
                               ONE_PIXEL)):
        sock = _connect(server)
        next(clients)
        sock.sendall(request)
        _hang_up(sock)
    for _ in range(10):  # closed politely mid-body, without reading the 400
      with _connect(server) as sock:
        next(clients)
        sock.sendall(_request([('Content-Length', 5000)], b'{'))
    _wait_for(lambda: not _handler_threads() - before,
              'the server is still answering')
  finally:
    release.set()
    _stop(server)
  err = capsys.readouterr().err
  assert 'Traceback' not in err and 'Exception' not in err, err
  lines = err.splitlines()
  assert len(lines) < next(clients), err  # a line each at most
  for line in lines:
    assert re.match(r'127\.0\.0\.1 - ("(GET|POST) [^"]*" \d{3} |'
                    r'the client hung up \(\w+\)$)', line), line


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
       length=st.one_of(st.none(), header_text),
       host=st.one_of(st.just('127.0.0.1'), st.sampled_from(
           ['localhost:8000', '[::1]', 'evil.example', '127.0.0.1.evil',
            '[::1]x', '']), header_text),
       content_type=st.one_of(st.just('application/json'), st.sampled_from(
           ['text/plain', 'application/json;charset=utf-8']), header_text))
def test_every_request_gets_a_json_answer(server, body, length, host,
                                          content_type):
  # length None: the right Content-Length; otherwise any printable value.
  # A value naming more bytes than are sent waits out the read timeout.
  headers = [('Content-Length', len(body) if length is None else length),
             ('Host', host), ('Content-Type', content_type)]
  status, answer = _send(server, headers, body)
  assert status in (200, 400, 403, 408, 415), answer
  refused = (mnist_draw_server.host_name(host) not in
             server.allowed_hosts)
  assert (status == 403) == refused, (host, answer)
  if status == 415:
    assert not mnist_draw_server.is_json(content_type)
  if status == 200:
    assert abs(sum(answer['probabilities']) - 1) < 1e-4
  else:
    assert answer['error'] and '\n' not in answer['error']
