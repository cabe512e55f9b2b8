"""A draw-a-digit web page: draw with the mouse, see the CNN's guess and conv1's maps.

  python mnist_cnn/mnist_draw_server.py --checkpoint_dir=/tmp/mnist_checkpoints --port=8000

then open http://127.0.0.1:8000/. After each stroke the page posts the
drawing to /predict and shows the 10 probabilities as bars, the predicted
digit, and the 32 first-layer feature maps before and after bias + ReLU.
The server listens on 127.0.0.1, this machine only (--host), and answers only
what is meant for it: a Host header that names another machine (what a page
that rebinds its own name to 127.0.0.1 sends) or an Origin that is another
site's gets a 403, and /predict takes only application/json (a form or
text/plain post, which any page can send unasked, gets a 415). It answers
every request: a missing, negative or non-numeric Content-Length, a body that
is not JSON, the wrong number of pixels, pixels outside 0-255 or a drawing
too large get a 400 with a message; a body that does not arrive within
READ_TIMEOUT seconds a 408; more than MAX_REQUESTS predictions at once
(counted once a body has arrived) a 503. Clients still sending share
MAX_CONNECTIONS connections and MAX_BODY_BYTES_HELD bytes received; when
either is full, the client that has been sending longest gives way (a 503),
so no crowd of slow clients keeps a drawing out. A failure in the model gets
a 500 with a one-line message; a client that hangs up is one log line at
most. Ctrl-C lets the prediction in flight finish (a body still arriving gets
a 503) before it closes the model.
"""
import base64
import collections
import http.server
import json
import os
import socket
import sys
import threading
import time

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('mnist_cnn.mnist_draw_server'))

from absl import flags
import numpy as np

from cli_support import entry
from mnist_cnn import images
from mnist_cnn import model as mnist_model
from tutorials_common import images as common_images
from tutorials_common.errors import UsageError
from tutorials_common.errors import one_line

FLAGS = flags.FLAGS

MAX_SIDE = 512            # pixels per side of a posted drawing
MAX_BODY = 4 * 1024 * 1024  # bytes of a request body
# Seconds a client may take to send its request's headers (each line) and,
# all together, its body: one that announces more bytes than it sends is
# answered 408 and dropped, instead of holding a thread forever.
READ_TIMEOUT = 5.0
# Predictions answered at once. A request counts only once its whole body
# has arrived, so clients still sending (slow, or never finishing) cannot
# keep the others out; more than this many at once are told to retry (503).
MAX_REQUESTS = 8
# Clients still sending (a request's headers or its body), and connections
# idle between requests, are bounded on their own: open connections, and the
# body bytes received so far (received, not announced: an announcement costs
# a client nothing). When either is full, the client that has been sending
# longest gives way to the newcomer (see Arrivals): a drawing arrives in
# milliseconds, so clients that hold their share longer go first, and no
# number of them keeps a drawing out.
MAX_CONNECTIONS = 512
MAX_BODY_BYTES_HELD = 64 * 1024 * 1024
HOST = '127.0.0.1'  # this machine only
# The names a request's Host header may give the server, besides --host's
# value. A page on another site that rebinds its own name to 127.0.0.1 sends
# that name, and is refused: it could otherwise read the answers.
LOCAL_HOSTS = ('localhost', '127.0.0.1', '::1')

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Draw a digit</title>
<style>
 body { font-family: sans-serif; margin: 20px; }
 #canvas { border: 1px solid #444; touch-action: none; cursor: crosshair; }
 #bars { display: flex; align-items: flex-end; height: 120px; gap: 6px; }
 .bar { width: 24px; background: #3c6ebe; }
 .bar.best { background: #e67814; }
 #labels { display: flex; gap: 6px; }
 #labels span { width: 24px; text-align: center; }
</style></head>
<body>
<h1>Draw a digit</h1>
<canvas id="canvas" width="280" height="280"></canvas>
<p><button id="clear">Clear</button> Prediction: <b id="prediction">-</b>
 <span id="error" style="color: #b00"></span></p>
<div id="bars"></div><div id="labels"></div>
<h2>conv1 feature maps (before, then after bias + ReLU)</h2>
<img id="maps" alt="feature maps">
<script>
const canvas = document.getElementById('canvas');
const ctx = canvas.getContext('2d');
const bars = document.getElementById('bars');
for (let i = 0; i < 10; i++) {
  const bar = document.createElement('div');
  bar.className = 'bar'; bar.id = 'bar-' + i; bar.style.height = '0px';
  bars.appendChild(bar);
  const label = document.createElement('span');
  label.textContent = i; document.getElementById('labels').appendChild(label);
}
function clearCanvas() {
  ctx.fillStyle = 'white'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  document.getElementById('prediction').textContent = '-';
  for (let i = 0; i < 10; i++) {
    const bar = document.getElementById('bar-' + i);
    bar.style.height = '0px'; bar.className = 'bar'; bar.dataset.p = '0';
  }
  document.getElementById('maps').removeAttribute('src');
}
clearCanvas();
ctx.lineWidth = 20; ctx.lineCap = 'round'; ctx.strokeStyle = 'black';
let drawing = false;
function point(e) {
  const r = canvas.getBoundingClientRect();
  return [e.clientX - r.left, e.clientY - r.top];
}
canvas.addEventListener('pointerdown', e => {
  drawing = true; const [x, y] = point(e);
  ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.1, y); ctx.stroke();
});
canvas.addEventListener('pointermove', e => {
  if (!drawing) return; const [x, y] = point(e);
  ctx.lineTo(x, y); ctx.stroke();
});
function endStroke() { if (drawing) { drawing = false; predict(); } }
canvas.addEventListener('pointerup', endStroke);
canvas.addEventListener('pointerleave', endStroke);
document.getElementById('clear').addEventListener('click', clearCanvas);
async function predict() {
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const pixels = new Array(canvas.width * canvas.height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = data[4 * i];
  const response = await fetch('/predict', {method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({width: canvas.width, height: canvas.height, pixels})});
  const result = await response.json();
  if (!response.ok) {
    document.getElementById('error').textContent = result.error; return;
  }
  result.probabilities.forEach((p, i) => {
    const bar = document.getElementById('bar-' + i);
    bar.style.height = Math.round(p * 118) + 'px'; bar.dataset.p = p;
    bar.className = i === result.prediction ? 'bar best' : 'bar';
  });
  document.getElementById('prediction').textContent = result.prediction;
  document.getElementById('maps').src = result.feature_maps;
}
</script></body></html>
"""


class BadRequest(ValueError):
  """A request the server answers with 400 and this message."""


def parse_content_length(value):
  """The body's length in bytes from a Content-Length header, or BadRequest."""
  if value is None:
    raise BadRequest('A Content-Length header is required.')
  value = value.strip()
  # ASCII digits only: int() would also take '-5', '+5', '1_000' and other
  # scripts' digits, none of which HTTP allows.
  if not (value.isascii() and value.isdigit()):
    raise BadRequest('Content-Length must be a whole number of bytes (0 or '
                     'more), not %r.' % value[:40])
  digits = value.lstrip('0') or '0'
  if len(digits) > len(str(MAX_BODY)) or int(digits) > MAX_BODY:
    raise BadRequest('The request is too large: %s bytes, at most %d.' %
                     (digits if len(digits) <= 40 else 'over 10**40',
                      MAX_BODY))
  return int(digits)


def _is_grey_level(value):
  # bool is an int in Python but not a pixel; NaN fails both comparisons.
  return (isinstance(value, (int, float)) and not isinstance(value, bool) and
          0 <= value <= 255)


def parse_drawing(body):
  """Grey levels [height, width] of a posted drawing, or BadRequest."""
  try:
    request = json.loads(body)
  except (ValueError, RecursionError):  # RecursionError: nesting too deep
    raise BadRequest('The body is not JSON: send {"width": W, "height": H, '
                     '"pixels": [W*H numbers 0-255]}.')
  if not isinstance(request, dict):
    raise BadRequest('Send a JSON object with width, height and pixels.')
  width, height, pixels = (request.get('width'), request.get('height'),
                           request.get('pixels'))
  for name, value in (('width', width), ('height', height)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise BadRequest('%s must be a positive whole number.' % name)
    if value > MAX_SIDE:
      raise BadRequest('The drawing is too large: %s %s is over %d pixels.' %
                       (name, value if value < 10**9 else 'over 10**9',
                        MAX_SIDE))
  if not isinstance(pixels, list) or len(pixels) != width * height:
    raise BadRequest('Wrong size: pixels must be a list of width x height = '
                     '%d numbers.' % (width * height))
  for index, value in enumerate(pixels):
    if not _is_grey_level(value):
      raise BadRequest('pixels must all be finite numbers from 0 to 255: '
                       'pixel %d is %s.' % (index, json.dumps(value)[:40]))
  return np.asarray(pixels, np.float32).reshape(height, width)


def host_name(value):
  """The host a Host header's value names: lower case, without the port or an
  IPv6 address's brackets; None where the value is not HOST[:PORT]."""
  value = value.strip().lower()
  if value.startswith('['):  # an IPv6 address: [::1]:8000
    name, bracket, port = value[1:].partition(']')
    if not bracket or (port and not port.startswith(':')):
      return None
    port = port[1:]
  else:
    name, _, port = value.partition(':')
  if not name or not (port == '' or (port.isascii() and port.isdigit())):
    return None
  return name


def _shown(value):
  """A header's value for a message: quoted, cut short, or 'none'."""
  return 'none' if value is None else json.dumps(value[:60])


def refusal(headers, allowed_hosts):
  """Why a request with these headers is not answered (the 403's message),
  or None where it is meant for this server.

  The checks Jupyter Server makes: the Host must name this machine (with or
  without a port), and an Origin, where the browser sends one, must be the
  page's own, http:// and that same Host. A browser sets both from the
  addresses it uses, so a page from another site cannot pass either; the
  port is the one the browser used, which behind an ssh tunnel is not the
  port the server listens on.
  """
  hosts = headers.get_all('Host') or []
  if len(hosts) != 1 or host_name(hosts[0]) not in allowed_hosts:
    names = ', '.join(sorted('[%s]' % name if ':' in name else name
                             for name in allowed_hosts))
    return ('Refused: the Host header must name this server (%s), and it is '
            '%s.' % (names, _shown(', '.join(hosts) if hosts else None)))
  origins = headers.get_all('Origin') or []
  if origins and (len(origins) > 1 or origins[0].strip().lower() !=
                  'http://' + hosts[0].strip().lower()):
    return ('Refused: a page from another site (Origin %s) may not use this '
            'server.' % _shown(', '.join(origins)))
  return None


def is_json(content_type):
  """Whether a Content-Type header says application/json (any parameters)."""
  return (content_type is not None and
          content_type.split(';')[0].strip().lower() == 'application/json')


TOO_MANY_DRAWINGS = ('The server is receiving too many drawings at once: try '
                     'again in a moment.')
TOO_MANY_CONNECTIONS = ('The server has too many open connections: try again '
                        'in a moment.')


class Handler(http.server.BaseHTTPRequestHandler):
  """Serves the page and answers /predict with the model in self.server."""

  def setup(self):
    # Every read and write on the connection gives up after the timeout.
    self.timeout = self.server.read_timeout
    super(Handler, self).setup()
    self._logged = False  # whether the request has its log line

  def handle(self):
    try:
      super(Handler, self).handle()
    except ConnectionError as e:
      # A client that hangs up (a reset, a broken pipe) is routine, not a
      # fault of the server: a line at most, and no traceback.
      if not self._logged:
        self.log_message('the client hung up (%s)', type(e).__name__)

  def handle_one_request(self):
    self._logged = False
    super(Handler, self).handle_one_request()

  def parse_request(self):
    """Reads the request's headers; answers (and returns False) one that
    gave way while it arrived, or that is not meant for this server."""
    if not super(Handler, self).parse_request():
      return False
    if self.server.arrivals.dropped(self.connection):
      status, error = 503, TOO_MANY_CONNECTIONS
    else:
      status, error = 403, refusal(self.headers, self.server.allowed_hosts)
    if error:
      self.close_connection = True  # a body, if any, is left unread
      self._json(status, {'error': error})
      return False
    return True

  def _reply(self, status, content_type, body):
    # Back in the line before the client has its answer: a newcomer that
    # follows at once finds this connection, about to close, at the front.
    self.server.arrivals.waiting(self.connection,
                                 closing=self.close_connection)
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def _json(self, status, value):
    self._reply(status, 'application/json', json.dumps(value).encode())

  def do_GET(self):  # pylint: disable=invalid-name
    if self.path in ('/', '/index.html'):
      self._reply(200, 'text/html; charset=utf-8', PAGE.encode())
    else:
      self._json(404, {'error': 'Not found: %s' % self.path})

  def do_POST(self):  # pylint: disable=invalid-name
    if self.path != '/predict':
      self.close_connection = True  # its body is left unread
      self._json(404, {'error': 'Not found: %s' % self.path})
      return
    try:
      length = parse_content_length(self.headers.get('Content-Length'))
    except BadRequest as e:
      self.close_connection = True  # the body, if any, is left unread
      self._json(400, {'error': str(e)})
      return
    content_type = self.headers.get('Content-Type')
    if not is_json(content_type):
      # Only JSON: a form or text/plain post is what a page on another site
      # may send without asking the server first.
      self.close_connection = True
      self._json(415, {'error': 'Send the drawing as JSON, with Content-Type:'
                                ' application/json (not %s).' %
                                _shown(content_type)})
      return
    if not self.server.arrivals.start_body(self.connection):
      self.close_connection = True
      self._json(503, {'error': TOO_MANY_DRAWINGS})
      return
    status, answer = self._answer(length)
    self._json(status, answer)

  def _answer(self, length):
    """(HTTP status, JSON answer) for a request of length body bytes."""
    try:
      body = self._read_body(length)
    except TimeoutError:
      self.close_connection = True
      return 408, {'error': 'The body did not arrive within %g seconds: send '
                            'the %d bytes the Content-Length announces.' %
                            (self.server.read_timeout, length)}
    finally:
      self.connection.settimeout(self.server.read_timeout)
      # Whole or not, the body is no longer arriving: its bytes no longer
      # count, and from here on it cannot be made to give way.
      arrived = self.server.arrivals.answering(self.connection)
    if not arrived:  # it gave way to a newcomer while it arrived
      self.close_connection = True
      return 503, {'error': TOO_MANY_DRAWINGS}
    if len(body) < length:
      self.close_connection = True
      return 400, {'error': 'The body ended after %d of the %d bytes its '
                            'Content-Length announces.' % (len(body), length)}
    # Only now, with the whole body here, does the request take a slot.
    if not self.server.requests.try_enter():
      if self.server.requests.closed:
        return 503, {'error': 'The server is stopping: start it again and '
                              'resend the drawing.'}
      return 503, {'error': 'The server is busy answering %d requests: try '
                            'again in a moment.' % self.server.requests.limit}
    try:
      return self._predict(body)
    finally:
      self.server.requests.leave()

  def _read_body(self, length):
    """The body's bytes (fewer if the client closed or gave way), or
    TimeoutError once the read timeout has passed since the first byte was
    asked for."""
    deadline = time.monotonic() + self.server.read_timeout
    chunks, received = [], 0
    while received < length:
      remaining = deadline - time.monotonic()
      if remaining <= 0:
        raise TimeoutError()
      self.connection.settimeout(remaining)
      chunk = self.rfile.read1(min(1 << 16, length - received))
      if not chunk or not self.server.arrivals.take(self.connection,
                                                    len(chunk)):
        break
      chunks.append(chunk)
      received += len(chunk)
    return b''.join(chunks)

  def _predict(self, body):
    """(HTTP status, JSON answer) for the posted drawing's body."""
    try:
      digit = images.to_mnist(parse_drawing(body))
    except (BadRequest, images.ImageError) as e:
      return 400, {'error': str(e)}
    try:
      probabilities, before, after = mnist_model.look_at(
          self.server.sess, self.server.model, digit)
      maps_png = common_images.encode_png(images.feature_map_grid(before, after))
    except Exception as e:  # pylint: disable=broad-except
      # The client gets one line; the server's log keeps the whole story.
      self.log_error('prediction failed: %r', e)
      return 500, {'error': 'The model could not predict: %s' % one_line(e)}
    return 200, {
        'probabilities': [float(p) for p in probabilities],
        'prediction': int(probabilities.argmax()),
        'feature_maps': 'data:image/png;base64,' +
                        base64.b64encode(maps_png).decode()}

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    self._logged = True
    sys.stderr.write('%s - %s\n' % (self.address_string(), format % args))


class RequestLimit(object):
  """Counts the requests being answered; at most `limit` at once."""

  def __init__(self, limit):
    self.limit = limit
    self.active = 0
    self.closed = False
    self._lock = threading.Lock()

  def try_enter(self):
    with self._lock:
      if self.closed or self.active >= self.limit:
        return False
      self.active += 1
      return True

  def leave(self):
    with self._lock:
      self.active -= 1

  def close(self, wait):
    """Lets nothing more in; waits up to `wait` seconds for all to leave."""
    deadline = time.monotonic() + wait
    with self._lock:
      self.closed = True
    while self.active > 0 and time.monotonic() < deadline:
      time.sleep(0.01)


class _Client(object):
  """One open connection, as Arrivals sees it."""
  __slots__ = ('held', 'receiving', 'dropped')

  def __init__(self):
    self.held = 0           # bytes of its request's body received so far
    self.receiving = False  # whether its request's body is arriving
    self.dropped = False    # whether it gave way to a newcomer


class Arrivals(object):
  """The open connections, and those still sending, in a line, oldest first.

  A connection joins the line at the back when it opens and again when its
  request's body starts, and leaves it when its request is whole: it is then
  being answered, which the prediction slots bound. Answered, it goes back:
  to the back to wait for another request, or to the front, about to close.
  In the line it holds a connection and the body bytes it has sent. When a
  newcomer finds no room (a connection, or its bytes), the ones at the front,
  which have waited or sent longest, are dropped: the count forgets them at
  once, and their socket is shut for reading, so that the thread reading it
  stops at once (with a 503, or a close where no request has arrived). A
  connection out of the line makes room for none: past max_connections of
  those, a newcomer is refused. Sockets are the keys; all under one lock.
  """

  def __init__(self, max_connections, max_body_bytes):
    self.max_connections = max_connections
    self.max_body_bytes = max_body_bytes
    self.connections = 0  # open and not dropped
    self.bodies = 0       # bodies arriving
    self.body_bytes = 0   # their bytes received so far
    self._clients = {}    # socket: _Client, for every open connection
    self._line = collections.OrderedDict()  # socket: None, oldest first
    self._lock = threading.Lock()

  def connect(self, sock):
    """Counts a new connection, dropping the oldest in line if there is no
    room; False (nothing counted) if every connection is being answered."""
    with self._lock:
      if self.connections >= self.max_connections:
        if not self._line:
          return False
        self._drop(next(iter(self._line)))
      self.connections += 1
      self._clients[sock] = _Client()
      self._line[sock] = None
      return True

  def disconnect(self, sock):
    """Forgets a connection whose thread is done, before its socket closes."""
    with self._lock:
      client = self._clients.pop(sock)
      self._leave_line(sock, client)
      if not client.dropped:
        self.connections -= 1

  def start_body(self, sock):
    """Its request's body starts arriving: to the back of the line. False if
    it has given way."""
    with self._lock:
      client = self._clients[sock]
      if client.dropped:
        return False
      client.receiving = True
      self.bodies += 1
      self._line[sock] = None
      self._line.move_to_end(sock)
      return True

  def take(self, sock, count):
    """Counts count more body bytes received on the connection, dropping
    the oldest in line that hold bytes until they fit; False if the
    connection has given way (it was the oldest left, or dropped before)."""
    with self._lock:
      client = self._clients[sock]
      if client.dropped:
        return False
      if self.body_bytes + count > self.max_body_bytes:
        for other in list(self._line):
          if other is sock:  # all older ones have made room: now its turn
            self._drop(sock)
            return False
          if self._clients[other].held:
            self._drop(other)
            if self.body_bytes + count <= self.max_body_bytes:
              break
      client.held += count
      self.body_bytes += count
      return True

  def answering(self, sock):
    """Its request is whole (or over): out of the line, its body bytes no
    longer counted. False if it gave way first."""
    with self._lock:
      client = self._clients[sock]
      self._leave_line(sock, client)
      return not client.dropped

  def waiting(self, sock, closing=False):
    """It waits for its next request, like a newcomer: to the back of the
    line. Or it is about to close: to the front, so that a newcomer need
    not wait for its thread to end to have its room."""
    with self._lock:
      if not self._clients[sock].dropped:
        self._line[sock] = None
        self._line.move_to_end(sock, last=not closing)

  def dropped(self, sock):
    """Whether the connection has given way to a newcomer."""
    with self._lock:
      return self._clients[sock].dropped

  def _leave_line(self, sock, client):
    self._line.pop(sock, None)
    self.body_bytes -= client.held
    client.held = 0
    if client.receiving:
      client.receiving = False
      self.bodies -= 1

  def _drop(self, sock):
    client = self._clients[sock]
    self._leave_line(sock, client)
    client.dropped = True
    self.connections -= 1
    try:
      # Its thread, blocked reading, wakes at once to an end of input; the
      # bytes it holds go with it a moment later.
      sock.shutdown(socket.SHUT_RD)
    except OSError:
      pass


# What a connection past MAX_CONNECTIONS gets, written by the thread that
# accepts connections: short enough for any socket's send buffer.
_TOO_MANY_CONNECTIONS_BODY = json.dumps(
    {'error': TOO_MANY_CONNECTIONS}).encode()
_TOO_MANY_CONNECTIONS_RESPONSE = (
    b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n'
    b'Content-Length: %d\r\nConnection: close\r\n\r\n' %
    len(_TOO_MANY_CONNECTIONS_BODY) + _TOO_MANY_CONNECTIONS_BODY)


class DrawServer(http.server.ThreadingHTTPServer):
  """A thread per connection, at most max_connections of them."""

  # The listen backlog: socketserver's 5 made a crowd's sixth connection
  # wait for the kernel's one-second SYN retry.
  request_queue_size = 128

  def __init__(self, address, read_timeout, max_requests, max_connections,
               max_body_bytes):
    if ':' in address[0]:  # an IPv6 address, such as ::1
      self.address_family = socket.AF_INET6
    self.read_timeout = read_timeout
    self.requests = RequestLimit(max_requests)
    self.arrivals = Arrivals(max_connections, max_body_bytes)
    self.allowed_hosts = frozenset(LOCAL_HOSTS + (address[0].lower(),))
    super(DrawServer, self).__init__(address, Handler)

  def process_request(self, request, client_address):
    if not self.arrivals.connect(request):
      try:
        request.settimeout(1.0)
        request.sendall(_TOO_MANY_CONNECTIONS_RESPONSE)
      except OSError:
        pass
      self.shutdown_request(request)
      return
    try:
      super(DrawServer, self).process_request(request, client_address)
    except BaseException:  # No thread started: it will not disconnect.
      self.arrivals.disconnect(request)
      raise

  def process_request_thread(self, request, client_address):
    # ThreadingMixIn's, but for disconnect: it comes before the socket
    # closes, so that Arrivals never shuts a socket closed (or reused).
    try:
      self.finish_request(request, client_address)
    except Exception:  # pylint: disable=broad-except
      self.handle_error(request, client_address)
    finally:
      self.arrivals.disconnect(request)
      self.shutdown_request(request)

  def close(self):
    """Stops serving: no prediction is still inside TensorFlow when this
    returns, so the interpreter's exit cannot end a thread there (Python
    ends a daemon thread at exit wherever it is, and ending one inside
    TensorFlow's C++ aborts the process instead of exiting with status 0)."""
    self.server_close()
    self.requests.close(wait=10 * self.read_timeout)
    self.sess.close()


def url_host(host):
  """host as a URL writes it: an IPv6 address in brackets."""
  return '[%s]' % host if ':' in host else host


def make_server(checkpoint_dir, port, host=HOST, read_timeout=READ_TIMEOUT,
                max_requests=MAX_REQUESTS, max_connections=MAX_CONNECTIONS,
                max_body_bytes=MAX_BODY_BYTES_HELD):
  """A server on host:port (port 0 picks a free port) with the model loaded."""
  server = DrawServer((host, port), read_timeout, max_requests,
                      max_connections, max_body_bytes)
  try:
    server.sess, server.model = mnist_model.restore(checkpoint_dir)
  except BaseException:
    server.server_close()  # free the port: the caller never gets the server
    raise
  return server


def define_flags():
  flags.DEFINE_string('checkpoint_dir', '/tmp/mnist_checkpoints',
                      'Folder with the trained checkpoints.')
  flags.DEFINE_string('host', HOST,
                      'Address to listen on (an IP address, such as ::1, or '
                      'a name); requests must name it, or localhost, in '
                      'their Host header. 127.0.0.1: this machine only.')
  flags.register_validator('host', lambda value: bool(value.strip()),
                           message='--host must name an address to listen on,'
                           ' such as 127.0.0.1 (empty would be every one).')
  flags.DEFINE_integer('port', 8000, 'Port on --host (0: any free port).',
                       lower_bound=0, upper_bound=65535)


def main(argv=None):  # pylint: disable=unused-argument
  host = FLAGS.host.strip()
  try:
    server = make_server(FLAGS.checkpoint_dir, FLAGS.port, host)
  except OSError as e:
    raise UsageError('cannot serve on %s:%d (%s): pick another --port or '
                     '--host.' % (url_host(host), FLAGS.port,
                                  e.strerror or e))
  print('Serving the draw-a-digit page on http://%s:%d/' %
        (url_host(host), server.server_address[1]))
  sys.stdout.flush()
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.close()


def run():
  entry.run(main, define_flags)

