"""A draw-a-digit web page: draw with the mouse, see the CNN's guess and conv1's maps.

  python mnist_cnn/mnist_draw_server.py --checkpoint_dir=/tmp/mnist_checkpoints --port=8000

then open http://127.0.0.1:8000/. After each stroke the page posts the
drawing to /predict and shows the 10 probabilities as bars, the predicted
digit, and the 32 first-layer feature maps before and after bias + ReLU.
The server listens on 127.0.0.1 only and answers every request: a missing,
negative or non-numeric Content-Length, a body that is not JSON, the wrong
number of pixels, pixels outside 0-255 or a drawing too large get a 400 with
a message; a body that does not arrive within READ_TIMEOUT seconds a 408;
more than MAX_REQUESTS predictions at once (counted once a body has
arrived), MAX_CONNECTIONS connections or MAX_BODY_BYTES_HELD bytes of bodies
being received a 503; a failure in the model a
500 with a one-line message. Ctrl-C lets the prediction in flight finish
(a body still arriving gets a 503) before it closes the model.
"""
import base64
import http.server
import json
import os
import sys
import threading
import time

if __package__ in (None, ''):
  # Run as a file: make the packages importable from the repo root.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cli_support import entry  # First: it quiets TensorFlow's start-up.
from tutorials_common.errors import UsageError
from tutorials_common.errors import one_line
from absl import flags
import numpy as np

from mnist_cnn import images
from tutorials_common import images as common_images
from mnist_cnn import model as mnist_model

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
# Clients still sending are bounded on their own: open connections, and the
# body bytes announced by the requests being received, all together. Past
# either, a request is told to retry (503) at once.
MAX_CONNECTIONS = 512
MAX_BODY_BYTES_HELD = 64 * 1024 * 1024

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


class Handler(http.server.BaseHTTPRequestHandler):
  """Serves the page and answers /predict with the model in self.server."""

  def setup(self):
    # Every read and write on the connection gives up after the timeout.
    self.timeout = self.server.read_timeout
    super(Handler, self).setup()

  def _reply(self, status, content_type, body):
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
    if not self.server.body_bytes.try_enter(length):
      self.close_connection = True
      self._json(503, {'error': 'The server is receiving too many drawings '
                                'at once: try again in a moment.'})
      return
    try:
      status, answer = self._answer(length)
    finally:
      self.server.body_bytes.leave(length)
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
    """The body's bytes (fewer if the client closed), or TimeoutError once
    the read timeout has passed since the first byte was asked for."""
    deadline = time.monotonic() + self.server.read_timeout
    chunks, received = [], 0
    while received < length:
      remaining = deadline - time.monotonic()
      if remaining <= 0:
        raise TimeoutError()
      self.connection.settimeout(remaining)
      chunk = self.rfile.read1(min(1 << 16, length - received))
      if not chunk:
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
    sys.stderr.write('%s - %s\n' % (self.address_string(), format % args))


class RequestLimit(object):
  """Counts what is in use (requests, connections, bytes); at most `limit`."""

  def __init__(self, limit):
    self.limit = limit
    self.active = 0
    self.closed = False
    self._lock = threading.Lock()

  def try_enter(self, amount=1):
    with self._lock:
      if self.closed or self.active + amount > self.limit:
        return False
      self.active += amount
      return True

  def leave(self, amount=1):
    with self._lock:
      self.active -= amount

  def close(self, wait):
    """Lets nothing more in; waits up to `wait` seconds for all to leave."""
    deadline = time.monotonic() + wait
    with self._lock:
      self.closed = True
    while self.active > 0 and time.monotonic() < deadline:
      time.sleep(0.01)


# What a connection past MAX_CONNECTIONS gets, written by the thread that
# accepts connections: short enough for any socket's send buffer.
_TOO_MANY_CONNECTIONS = json.dumps({
    'error': 'The server has too many open connections: try again in a '
             'moment.'}).encode()
_TOO_MANY_CONNECTIONS_RESPONSE = (
    b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n'
    b'Content-Length: %d\r\nConnection: close\r\n\r\n' %
    len(_TOO_MANY_CONNECTIONS) + _TOO_MANY_CONNECTIONS)


class DrawServer(http.server.ThreadingHTTPServer):
  """A thread per connection, at most max_connections of them."""

  # The listen backlog: socketserver's 5 made a crowd's sixth connection
  # wait for the kernel's one-second SYN retry.
  request_queue_size = 128

  def __init__(self, address, read_timeout, max_requests, max_connections,
               max_body_bytes):
    self.read_timeout = read_timeout
    self.requests = RequestLimit(max_requests)
    self.connections = RequestLimit(max_connections)
    self.body_bytes = RequestLimit(max_body_bytes)
    super(DrawServer, self).__init__(address, Handler)

  def process_request(self, request, client_address):
    if not self.connections.try_enter():
      try:
        request.settimeout(1.0)
        request.sendall(_TOO_MANY_CONNECTIONS_RESPONSE)
      except OSError:
        pass
      self.shutdown_request(request)
      return
    try:
      super(DrawServer, self).process_request(request, client_address)
    except BaseException:  # No thread started: it will not leave.
      self.connections.leave()
      raise

  def close(self):
    """Stops serving: no prediction is still inside TensorFlow when this
    returns, so the interpreter's exit cannot end a thread there (Python
    ends a daemon thread at exit wherever it is, and ending one inside
    TensorFlow's C++ aborts the process instead of exiting with status 0)."""
    self.server_close()
    self.requests.close(wait=10 * self.read_timeout)
    self.sess.close()

  def process_request_thread(self, request, client_address):
    try:
      super(DrawServer, self).process_request_thread(request, client_address)
    finally:
      self.connections.leave()


def make_server(checkpoint_dir, port, read_timeout=READ_TIMEOUT,
                max_requests=MAX_REQUESTS, max_connections=MAX_CONNECTIONS,
                max_body_bytes=MAX_BODY_BYTES_HELD):
  """A server on 127.0.0.1:port (0 picks a free port) with the model loaded."""
  server = DrawServer(('127.0.0.1', port), read_timeout, max_requests,
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
  flags.DEFINE_integer('port', 8000, 'Port on 127.0.0.1 (0: any free port).',
                       lower_bound=0, upper_bound=65535)


def main(argv=None):  # pylint: disable=unused-argument
  try:
    server = make_server(FLAGS.checkpoint_dir, FLAGS.port)
  except OSError as e:
    raise UsageError('cannot serve on 127.0.0.1:%d (%s): pick another '
                     '--port.' % (FLAGS.port, e.strerror or e))
  print('Serving the draw-a-digit page on http://127.0.0.1:%d/' %
        server.server_address[1])
  sys.stdout.flush()
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.close()


def run():
  entry.run(main, define_flags)


if __name__ == '__main__':
  run()
