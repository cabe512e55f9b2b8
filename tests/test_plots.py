"""The prediction charts (tutorials_common.plots) and whole-or-nothing files
(tutorials_common.files): what the predict commands' --chart and the
notebooks draw, and how every file a command writes is written."""
import errno
import os
import stat
import sys

import numpy as np
import pytest

from tutorials_common import files
from tutorials_common import plots
from tutorials_common.errors import UsageError

pytest.importorskip('matplotlib', reason="pip install -e '.[test]'")
import matplotlib.colors  # noqa: E402

NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
         'horse', 'ship', 'truck']


def test_each_row_is_the_picture_beside_bars_named_by_class():
  rng = np.random.RandomState(0)
  probabilities = rng.dirichlet(np.ones(10), size=2)
  pictures = [rng.randint(0, 256, (32, 32, 3)), rng.rand(28, 28)]
  figure = plots.prediction_figure(
      [(pictures[0], probabilities[0], 'a.png'),
       (pictures[1], probabilities[1], 'b.png')], NAMES)
  axes = figure.get_axes()
  assert len(axes) == 4
  for row in range(2):
    picture_ax, bars_ax = axes[2 * row], axes[2 * row + 1]
    assert picture_ax.get_title() == ['a.png', 'b.png'][row]
    shown = picture_ax.get_images()[0].get_array()
    assert shown.shape[:2] == pictures[row].shape[:2]
    bars = bars_ax.patches
    np.testing.assert_allclose([bar.get_width() for bar in bars],
                               probabilities[row])
    assert [label.get_text() for label in bars_ax.get_yticklabels()] == NAMES
    best = int(np.argmax(probabilities[row]))
    colours = [matplotlib.colors.to_hex(bar.get_facecolor()) for bar in bars]
    assert colours[best] == matplotlib.colors.to_hex(plots.BEST_COLOUR)
    assert set(colours[:best] + colours[best + 1:]) == {
        matplotlib.colors.to_hex(plots.OTHER_COLOUR)}
    assert bars_ax.get_xlabel() == 'probability'
    assert bars_ax.get_ylabel() == 'class'
    assert bars_ax.get_title() == 'Prediction: %s (%.2f)' % (
        NAMES[best], probabilities[row][best])


def test_saved_png_and_svg_are_whole_pictures(tmp_path):
  figure = plots.prediction_figure(
      [(np.zeros((28, 28)), np.eye(10)[7], 'seven')],
      [str(d) for d in range(10)])
  plots.save_figure(figure, str(tmp_path / 'chart.png'))
  plots.save_figure(figure, str(tmp_path / 'chart.svg'))
  png = (tmp_path / 'chart.png').read_bytes()
  assert png.startswith(b'\x89PNG\r\n\x1a\n')
  width, height = (int.from_bytes(png[16:20], 'big'),
                   int.from_bytes(png[20:24], 'big'))
  assert (width, height) == (800, 310)
  svg = (tmp_path / 'chart.svg').read_text()
  assert svg.rstrip().endswith('</svg>') and 'Prediction: 7' in svg
  assert sorted(os.listdir(tmp_path)) == ['chart.png', 'chart.svg']


@pytest.mark.parametrize('path,message', [
    ('chart.jpg', 'end its name in .png or .svg'),
    ('missing/chart.png', 'does not exist; create it'),
])
def test_a_chart_path_it_cannot_write_is_a_usage_error(tmp_path, path,
                                                       message):
  with pytest.raises(UsageError, match=message):
    plots.check_chart_path(str(tmp_path / path))


def test_without_matplotlib_the_chart_says_how_to_install_it(monkeypatch):
  monkeypatch.setitem(sys.modules, 'matplotlib', None)  # import fails
  with pytest.raises(plots.MatplotlibMissing) as raised:
    plots.require_matplotlib('--chart')
  assert str(raised.value) == (
      "--chart needs matplotlib, which is not installed: pip install "
      "matplotlib, or pip install -e '.[charts]' in the project's folder.")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(
    tmp_path, monkeypatch):
  target = tmp_path / 'chart.png'
  target.write_bytes(b'old picture')

  def no_space(*_):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(os, 'fsync', no_space)
  with pytest.raises(files.WriteError) as raised:
    files.write_atomically(str(target), b'new picture')
  assert str(raised.value) == ('cannot write chart.png in %s: No space left '
                               'on device.' % tmp_path)
  assert target.read_bytes() == b'old picture'
  assert os.listdir(tmp_path) == ['chart.png']


@pytest.mark.parametrize('umask', [0o022, 0o077, 0o002])
def test_files_written_for_the_user_get_the_mode_of_the_users_umask(
    tmp_path, umask):
  """As a checkpoint or an export beside them: 0o666 less the umask (the
  temporary file it is written under starts private)."""
  saved = os.umask(umask)
  try:
    path = files.write_atomically(str(tmp_path / 'chart.png'), b'picture')
    plain = tmp_path / 'plain'
    plain.write_bytes(b'what open() makes')
  finally:
    os.umask(saved)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
  assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(
      plain.stat().st_mode)
