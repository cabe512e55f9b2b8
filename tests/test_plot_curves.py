"""scripts/plot_curves.py: matplotlib PNG and SVG pictures of precision curves.

Replaces test_speed_scripts.py's test_plot_draws_one_line_per_curve (written
for the hand-made SVG). matplotlib is in the notebook extra.
"""
import os
import runpy
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from cifar_fixtures import REPO_ROOT
from cifar_fixtures import run_script

matplotlib = pytest.importorskip(
    'matplotlib', reason="matplotlib is in the notebook extra, not installed: "
    "pip install -e '.[charts]'")
from matplotlib import image  # noqa: E402

SCRIPT = os.path.join('scripts', 'plot_curves.py')


@pytest.fixture
def curves(tmp_path):
  paths = []
  for name, rows in (('a', [(0, 0.1), (5, 0.75), (10, 0.8)]),
                     ('b', [(0, 0.1), (5, 0.78), (12.5, 0.86)])):
    path = tmp_path / (name + '.csv')
    path.write_text('step,minutes,precision\n' + ''.join(
        '%d,%s,%s\n' % (i, m, p) for i, (m, p) in enumerate(rows)))
    paths.append(str(path))
  return ['tutorial=%s' % paths[0], 'fast schedule=%s' % paths[1]]


def _plot(output, curves):
  result = run_script([SCRIPT, '--output', str(output)] + curves)
  assert result.returncode == 0, result.stderr
  assert 'wrote %s' % output in result.stdout
  return output


def test_png_has_the_size_ink_and_labelled_axes(tmp_path, curves):
  pixels = image.imread(str(_plot(tmp_path / 'plot.png', curves)))
  assert pixels.shape[:2] == (400, 640)
  grey = pixels[:, :, :3].mean(axis=2)
  assert grey.std() > 0.05  # Not blank.
  # Ink left of the plot (the vertical label) and under it (the horizontal).
  assert (grey[100:300, :25] < 0.5).any()
  assert (grey[370:, 200:440] < 0.5).any()
  # Both curves' colours are there.
  for colour in ((0x1f, 0x77, 0xb4), (0xd6, 0x27, 0x28)):
    distance = abs(pixels[:, :, :3] * 255 - colour).sum(axis=2)
    assert (distance < 30).sum() > 50, colour


def test_svg_has_labelled_axes_a_legend_and_both_curves(tmp_path, curves):
  svg = _plot(tmp_path / 'plot.svg', curves).read_text()
  root = ElementTree.fromstring(svg)
  assert root.tag.endswith('svg') and float(root.get('width')[:-2]) > 300
  for text in ('minutes of training', 'precision @ 1 (10,000 test images)',
               'tutorial', 'fast schedule', 'CIFAR-10 precision @ 1',
               "the tutorial's figure"):
    assert text in svg, text
  # One matplotlib line per curve (ids line2d_*), plus the grid and target.
  assert svg.count('id="line2d_') >= 2


def test_bad_arguments_say_what_is_wrong(tmp_path, curves):
  bad = run_script([SCRIPT, '--output', str(tmp_path / 'p.svg'),
                    'no-label-here'])
  assert bad.returncode != 0 and 'is not LABEL=CSV' in bad.stderr
  bad = run_script([SCRIPT, '--output', str(tmp_path / 'p.pdf')] + curves)
  assert bad.returncode != 0 and 'must end in .png or .svg' in bad.stderr


def test_without_matplotlib_it_says_how_to_install_it(tmp_path, curves,
                                                      monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, 'matplotlib', None)  # import fails
  monkeypatch.setattr(sys, 'argv', ['plot_curves.py', '--output',
                                    str(tmp_path / 'p.png')] + curves)
  with pytest.raises(SystemExit) as exit_info:
    runpy.run_path(os.path.join(REPO_ROOT, SCRIPT), run_name='__main__')
  message = str(exit_info.value.code)
  assert message.startswith('plot_curves: error: matplotlib is not installed')
  assert "pip install -e '.[charts]'" in message
  assert len(message.splitlines()) == 1
  assert not (tmp_path / 'p.png').exists()
