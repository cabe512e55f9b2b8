"""Matplotlib pictures of predictions (each picture beside its
probabilities) and of the training loss.

mnist_predict --chart, cifar10_predict --chart and the notebooks draw with
these, so a chart from a command and one in a notebook look the same: the
picture the network saw, then one bar per class named by the class, the most
probable in orange, with the probability written beside each bar. The
CIFAR-10 notebook draws its loss curve with draw_loss.

matplotlib is an extra, not a core dependency: only --chart and the
notebooks draw, and training, evaluation, export and the draw server would
not use it, nor the fonts and Pillow it brings. `pip install -e '.[charts]'`
(or `.[notebook]`) installs it; `require_matplotlib` is the one
line a command prints without it.
"""
import io
import os

import numpy as np

from tutorials_common import files
from tutorials_common.errors import UsageError

INSTALL_HINT = ("pip install matplotlib, or pip install -e '.[charts]' in "
                "the project's folder")
FORMATS = ('.png', '.svg')
BEST_COLOUR = 'tab:orange'
OTHER_COLOUR = 'tab:blue'
# TensorBoard's default smoothing of a scalar curve.
SMOOTHING = 0.6


class MatplotlibMissing(UsageError):
  """A picture was asked for, and matplotlib is not installed."""


def require_matplotlib(what='--chart'):
  """Raises MatplotlibMissing (one line: what needs it, how to install it)."""
  try:
    import matplotlib  # noqa: F401 pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    raise MatplotlibMissing('%s needs matplotlib, which is not installed: %s.'
                            % (what, INSTALL_HINT)) from None


def check_chart_path(path, flag='--chart'):
  """UsageError unless path ends in .png or .svg and its folder exists."""
  if os.path.splitext(path)[1].lower() not in FORMATS:
    raise UsageError('%s=%s: the chart is a PNG or SVG file; end its name in '
                     '.png or .svg.' % (flag, path))
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise UsageError('%s=%s: the folder %s does not exist; create it or '
                     'choose another.' % (flag, path, folder))


def draw_probabilities(ax, probabilities, class_names, title=None):
  """Horizontal bars of the probabilities on ax, one per class, named."""
  probabilities = np.asarray(probabilities, np.float64)
  best = int(np.argmax(probabilities))
  rows = np.arange(len(probabilities))
  ax.barh(rows, probabilities, color=[BEST_COLOUR if row == best else
                                      OTHER_COLOUR for row in rows])
  for row, p in zip(rows, probabilities):
    ax.text(min(p, 1.0) + 0.01, row, '%.2f' % p, va='center',
            fontsize='x-small')
  ax.set_yticks(rows)
  ax.set_yticklabels([str(name) for name in class_names])
  ax.invert_yaxis()  # The first class on top, as in a list.
  ax.set_xlim(0, 1.12)
  ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
  ax.set_xlabel('probability')
  ax.set_ylabel('class')
  ax.set_title(title or 'Prediction: %s (%.2f)' % (class_names[best],
                                                   probabilities[best]),
               fontsize='small')


def draw_picture(ax, pixels, title=''):
  """The picture on ax: HxW grey (0-1 or 0-255) or HxWx3 colour (0-255)."""
  pixels = np.asarray(pixels, np.float64)
  if pixels.ndim == 3 and pixels.shape[-1] == 1:
    pixels = pixels[..., 0]
  if pixels.ndim == 2:
    ax.imshow(pixels, cmap='gray', vmin=0, vmax=1 if pixels.max() <= 1 else 255,
              interpolation='nearest')
  else:
    ax.imshow(np.clip(np.round(pixels), 0, 255).astype(np.uint8),
              interpolation='nearest')
  ax.set_xticks([])
  ax.set_yticks([])
  if title:
    ax.set_title(title, fontsize='small')


def prediction_figure(rows, class_names, figure=None):
  """A Figure: per (pixels, probabilities, title) row, the picture beside its bars.

  Without `figure`, a matplotlib.figure.Figure of its own (no pyplot, so no
  display or backend is needed); a notebook can pass plt.figure().
  """
  if figure is None:
    from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
    figure = Figure()
  bar_height = 0.22 * len(class_names) + 0.9
  figure.set_size_inches(8, max(bar_height, 2.2) * len(rows))
  axes = figure.subplots(len(rows), 2, squeeze=False,
                         gridspec_kw={'width_ratios': [1, 2.4]})
  for (picture_ax, bars_ax), (pixels, probabilities, title) in zip(axes, rows):
    draw_picture(picture_ax, pixels, title)
    draw_probabilities(bars_ax, probabilities, class_names)
  figure.tight_layout()
  return figure


def smoothed(values, weight=SMOOTHING):
  """values smoothed as TensorBoard smooths a curve (0 <= weight < 1): an
  exponential moving average, divided by the share its start of 0 still
  has, so that it starts at the first value. The tutorial's own
  ExponentialMovingAverage of the loss starts at 0 and is not corrected: its
  curve climbs at first while the loss falls."""
  result = []
  average = 0.0
  for count, value in enumerate(values, 1):
    average = weight * average + (1 - weight) * float(value)
    result.append(average / (1 - weight ** count))
  return result


def draw_loss(ax, steps, losses, ylabel='loss', weight=SMOOTHING):
  """The loss of each logged batch on ax, faint, and its smoothing."""
  line, = ax.plot(steps, losses, alpha=0.3, label='batch loss')
  ax.plot(steps, smoothed(losses, weight), color=line.get_color(),
          label='batch loss, smoothed')
  ax.set_xlabel('training step')
  ax.set_ylabel(ylabel)
  ax.legend(fontsize='small')


def figure_bytes(figure, file_format='png', dpi=100):
  """The figure encoded as PNG or SVG bytes."""
  buffer = io.BytesIO()
  figure.savefig(buffer, format=file_format, dpi=dpi)
  return buffer.getvalue()


def save_figure(figure, path, dpi=100):
  """Writes the figure to path, PNG or SVG by its suffix, whole or not at all."""
  file_format = os.path.splitext(path)[1].lower().lstrip('.') or 'png'
  return files.write_atomically(path, figure_bytes(figure, file_format, dpi))
