"""A draw-a-digit web page: draw with the mouse, see the CNN's guess and conv1's maps.

  python mnist_cnn/mnist_draw_server.py --checkpoint_dir=/tmp/mnist_checkpoints --port=8000

then open http://127.0.0.1:8000/. After each stroke the page posts the
drawing to /predict and shows the 10 probabilities as bars, the predicted
digit, and the 32 first-layer feature maps before and after bias + ReLU.
The server listens on 127.0.0.1 only. A request that is not JSON, has the
wrong number of pixels, holds anything but numbers, or is too large gets a
400 with a message; the server keeps serving. Each prediction takes a few
milliseconds.
"""
from __future__ import absolute_import, division, print_function

import base64
import http.server
import json
import math
import os
import sys

if __package__ in (None, ''):
  # Run as a file: make the mnist_cnn package importable from the repo root.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app
from absl import flags
import numpy as np
import tensorflow.compat.v1 as tf

from mnist_cnn import images
from mnist_cnn import model as mnist_model

FLAGS = flags.FLAGS

MAX_SIDE = 512            # pixels per side of a posted drawing
MAX_BODY = 4 * 1024 * 1024  # bytes of a request body

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
  pass


def parse_drawing(body):
  """Grey levels [height, width] of a posted drawing, or BadRequest."""
  try:
    request = json.loads(body)
  except ValueError:
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
      raise BadRequest('The drawing is too large: %s %d is over %d pixels.' %
                       (name, value, MAX_SIDE))
  if not isinstance(pixels, list) or len(pixels) != width * height:
    raise BadRequest('Wrong size: pixels must be a list of width x height = '
                     '%d numbers.' % (width * height))
  if not all(isinstance(p, (int, float)) and not isinstance(p, bool) and
             math.isfinite(p) for p in pixels):
    raise BadRequest('pixels must all be finite numbers (0-255).')
  return np.asarray(pixels, np.float32).reshape(height, width)


class Handler(http.server.BaseHTTPRequestHandler):
  """Serves the page and answers /predict with the model in self.server."""

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
      self._json(404, {'error': 'Not found: %s' % self.path})
      return
    try:
      length = int(self.headers.get('Content-Length', ''))
    except ValueError:
      self._json(400, {'error': 'A Content-Length header is required.'})
      return
    if length > MAX_BODY:
      self.close_connection = True
      self._json(400, {'error': 'The request is too large: %d bytes, at most '
                                '%d.' % (length, MAX_BODY)})
      return
    try:
      digit = images.to_mnist(parse_drawing(self.rfile.read(length)))
    except (BadRequest, images.ImageError) as e:
      self._json(400, {'error': str(e)})
      return
    probabilities, before, after = mnist_model.look_at(
        self.server.sess, self.server.model, digit)
    maps_png = images.encode_png(images.feature_map_grid(before, after))
    self._json(200, {
        'probabilities': [float(p) for p in probabilities],
        'prediction': int(probabilities.argmax()),
        'feature_maps': 'data:image/png;base64,' +
                        base64.b64encode(maps_png).decode()})

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    sys.stderr.write('%s - %s\n' % (self.address_string(), format % args))


def make_server(checkpoint_dir, port):
  """A server on 127.0.0.1:port (0 picks a free port) with the model loaded."""
  server = http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler)
  server.sess, server.model = mnist_model.restore(checkpoint_dir)
  return server


def define_flags():
  flags.DEFINE_string('checkpoint_dir', '/tmp/mnist_checkpoints',
                      'Folder with the trained checkpoints.')
  flags.DEFINE_integer('port', 8000, 'Port on 127.0.0.1 (0: any free port).')


def main(argv=None):  # pylint: disable=unused-argument
  try:
    server = make_server(FLAGS.checkpoint_dir, FLAGS.port)
  except (ValueError, OSError) as e:
    sys.exit('mnist_draw_server: error: %s' % e)
  print('Serving the draw-a-digit page on http://127.0.0.1:%d/' %
        server.server_address[1])
  sys.stdout.flush()
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass


def run():
  tf.disable_eager_execution()
  define_flags()
  app.run(main)


if __name__ == '__main__':
  run()
