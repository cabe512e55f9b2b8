"""DrawDigit: draw a digit in a notebook and see what the MNIST CNN makes of it.

The widget of notebooks/mnist_deep.ipynb. It replaces the tutorial's HTML
canvas, which sent the drawing with `IPython.notebook.kernel.execute`, a
JavaScript object that JupyterLab and Notebook 7 do not have. This one is an
anywidget: the browser side is canvas.js and canvas.css, files beside this
module, and the drawing travels to the kernel as a synced widget trait, so it
works in JupyterLab 4, Notebook 7, VS Code and Colab with no extension to
build.

  from mnist_cnn import canvas
  widget = canvas.DrawDigit.from_checkpoint('/tmp/mnist_checkpoints')
  widget                       # draw with the mouse, a pen or a finger
  widget.digit                 # later cells: the 28x28 digit the model saw

After each stroke the kernel turns the drawing into an MNIST-like digit with
mnist_cnn.images.to_mnist, runs the network on it and sends back the ten
probabilities (drawn as bars), the prediction and a picture of conv1's 32
feature maps before and after bias + ReLU (mnist_cnn.images.feature_map_grid).
An empty drawing, or one that is not grey levels 0-255, gives a message in the
widget instead.

Needs the `notebook` extra: pip install -e '.[notebook]'.
"""
import base64
import pathlib

import numpy as np

try:
  import anywidget
  from ipywidgets.widgets import trait_types
  import traitlets
except ImportError as e:  # pragma: no cover - depends on the install
  raise ImportError(
      "mnist_cnn.canvas needs the notebook extra: pip install -e "
      "'.[notebook]' (%s)" % e)

from mnist_cnn import images
from tutorials_common import images as common_images
from mnist_cnn import model as mnist_model
from tutorials_common.errors import one_line

_HERE = pathlib.Path(__file__).parent
SIZE = 280  # Canvas side in pixels: ten times MNIST's 28.
EMPTY_MESSAGE = 'Draw a digit on the canvas.'


def _data_url(pixels):
  """A data: URL of the PNG of a uint8 (or 0-1 float) picture."""
  pixels = np.asarray(pixels)
  if pixels.dtype != np.uint8:
    pixels = np.clip(np.round(pixels * 255), 0, 255).astype(np.uint8)
  return 'data:image/png;base64,' + base64.b64encode(
      common_images.encode_png(pixels)).decode('ascii')


def checkpoint_predictor(checkpoint_dir):
  """A predict function for DrawDigit from mnist_deep's latest checkpoint:
  digit [784] -> (probabilities [10], conv1 before, after [28, 28, 32])."""
  sess, model = mnist_model.restore(checkpoint_dir)

  def predict(digit):
    return mnist_model.look_at(sess, model, digit)

  predict.session, predict.model = sess, model
  return predict


class DrawDigit(anywidget.AnyWidget):
  """A canvas to draw a digit on, with the network's answer beside it.

  predict: a function digit [784 floats in [0, 1]] -> (probabilities [10],
    conv1 maps before and after bias + ReLU, [28, 28, 32] each), such as
    `checkpoint_predictor(dir)`; or a (session, model) pair from
    mnist_cnn.model.restore.

  Python-side values: `digit` (float32 [28, 28] in [0, 1], the drawing as
  to_mnist made it, or None), `probabilities`, `prediction` (-1 until there
  is one) and `message`. `draw(grey)` puts a picture on it from Python, as a
  stroke in the browser does.
  """
  _esm = _HERE / 'canvas.js'
  _css = _HERE / 'canvas.css'

  # From the browser: the canvas's ink, one byte per pixel (0 blank, 255
  # ink), row by row, size x size.
  # ipywidgets hands binary state over as a memoryview: made bytes here.
  drawing = traitlets.Bytes(b'').tag(sync=True,
                                     **trait_types.bytes_serialization)
  size = traitlets.Int(SIZE).tag(sync=True)
  # To the browser.
  probabilities = traitlets.List(traitlets.Float(), []).tag(sync=True)
  prediction = traitlets.Int(-1).tag(sync=True)
  message = traitlets.Unicode(EMPTY_MESSAGE).tag(sync=True)
  digit_png = traitlets.Unicode('').tag(sync=True)
  maps_png = traitlets.Unicode('').tag(sync=True)
  # Kernel only: the digit as the network saw it, for later cells.
  digit = traitlets.Any(None)

  def __init__(self, predict, **kwargs):
    if isinstance(predict, tuple) and len(predict) == 2:
      sess, model = predict
      predict = lambda digit: mnist_model.look_at(sess, model, digit)
    if not callable(predict):
      raise TypeError('predict must be a function digit -> (probabilities, '
                      'before, after) or a (session, model) pair, got %r.'
                      % (predict,))
    self._predict = predict
    self.before = self.after = None
    super(DrawDigit, self).__init__(**kwargs)

  @classmethod
  def from_checkpoint(cls, checkpoint_dir, **kwargs):
    """The widget on mnist_deep's latest checkpoint in checkpoint_dir."""
    return cls(checkpoint_predictor(checkpoint_dir), **kwargs)

  @traitlets.observe('drawing')
  def _on_drawing(self, change):
    ink = np.frombuffer(bytes(change['new']), np.uint8)
    if ink.size == 0:
      self._show_nothing(EMPTY_MESSAGE)
      return
    if ink.size != self.size * self.size:
      self._show_nothing('The drawing has %d pixels, expected %d x %d.' %
                         (ink.size, self.size, self.size))
      return
    self.draw(ink.reshape(self.size, self.size))

  def draw(self, grey):
    """Classifies a picture as if it had been drawn: grey levels 0-255 of
    any 2-D size (ink light on dark or dark on light). Returns the
    prediction, or None with the reason in `message`."""
    try:
      grey = np.asarray(grey, np.float64)
    except (TypeError, ValueError) as e:
      return self._show_nothing('The drawing is not an array of grey levels '
                                '(%s).' % one_line(e))
    if grey.ndim != 2 or min(grey.shape) < 1:
      return self._show_nothing('The drawing must be a 2-D picture, got '
                                'shape %s.' % (grey.shape,))
    if not np.isfinite(grey).all():
      return self._show_nothing('The drawing must hold grey levels from 0 to '
                                '255; it has values that are not finite '
                                'numbers (NaN or infinity).')
    if grey.min() < 0 or grey.max() > 255:
      return self._show_nothing('The drawing must hold grey levels from 0 to '
                                '255; it has values from %s to %s.' %
                                (grey.min(), grey.max()))
    if grey.max() - grey.min() < 1:
      return self._show_nothing(EMPTY_MESSAGE)
    try:
      digit = images.to_mnist(grey)
      probabilities, before, after = self._predict(digit)
    except Exception as e:  # pylint: disable=broad-except
      # Shown in the widget: a traceback in a comm callback goes to a log the
      # user never sees.
      return self._show_nothing('Could not classify the drawing: %s' %
                                one_line(e))
    probabilities = np.asarray(probabilities, np.float64).reshape(-1)
    digit = np.asarray(digit, np.float32).reshape(images.MNIST_SIZE,
                                                  images.MNIST_SIZE)
    self.before, self.after = before, after
    with self.hold_sync():
      self.digit = digit
      self.probabilities = [float(p) for p in probabilities]
      self.prediction = int(np.argmax(probabilities))
      self.digit_png = _data_url(digit)
      self.maps_png = _data_url(images.feature_map_grid(before, after))
      self.message = ''
    return self.prediction

  def clear(self):
    """Empties the canvas, as the Clear button does."""
    self.drawing = b''
    self._show_nothing(EMPTY_MESSAGE)

  def _show_nothing(self, message):
    with self.hold_sync():
      self.digit = None
      self.before = self.after = None
      self.probabilities = []
      self.prediction = -1
      self.digit_png = ''
      self.maps_png = ''
      self.message = message
    return None
