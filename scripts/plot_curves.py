"""Draws precision @ 1 against minutes of training for one or more curves.

  python scripts/plot_curves.py --output=/tmp/curves.svg \
      "tutorial schedule=docs/curve_tutorial.csv" "fast schedule=docs/curve_fast.csv"

Each argument is LABEL=CSV, a curve written by scripts/cifar10_real_data.py
(columns step, minutes, precision, ...). The picture is drawn with
matplotlib, as PNG or SVG by the extension of --output. matplotlib comes with
the charts (and the notebook) extra: pip install -e '.[charts]'.
"""
import argparse
import csv
import os
import sys

COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd']
TARGET = 0.86  # The tutorial's published precision @ 1.
FORMATS = ('.png', '.svg')
INSTALL_HINT = ("matplotlib is not installed: pip install -e '.[charts]' "
                "(or pip install matplotlib)")


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output', required=True,
                      help='Picture to write: FILE.png or FILE.svg.')
  parser.add_argument('--title', default='CIFAR-10 precision @ 1',
                      help='Title above the plot.')
  parser.add_argument('--x', default='minutes', choices=['minutes', 'epochs'],
                      help='What the horizontal axis counts (a column of '
                      'the CSV).')
  # The default shows where the schedules differ; the step-0 checkpoints
  # (chance, 0.1) are left off it.
  parser.add_argument('--y_range', default='0.7,0.9',
                      help='Lowest and highest precision shown, MIN,MAX '
                      '(fractions); points below MIN are left out.')
  parser.add_argument('curves', nargs='+', help='LABEL=CSV, one per curve.')
  return parser.parse_args(argv)


def read_curve(path, x_column='minutes'):
  with open(path) as f:
    return [(float(row[x_column]), float(row['precision']))
            for row in csv.DictReader(f)]


def plot(curves, output, title, x_label='minutes', y_range=(0.7, 0.9)):
  """Writes the curves [(label, [(x, precision), ...])] to output (.png/.svg)."""
  # matplotlib is optional (the charts extra): main() checks for it first
  # and says how to install it.
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')  # No display needed.
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  # Text as text in the SVG: smaller, searchable, and the page's font.
  matplotlib.rcParams['svg.fonttype'] = 'none'

  y_min, y_max = y_range
  fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
  for i, (label, points) in enumerate(curves):
    points = [(m, p) for m, p in points if p >= y_min]
    ax.plot([m for m, _ in points], [p for _, p in points], 'o-',
            color=COLOURS[i % len(COLOURS)], linewidth=2, markersize=4,
            label=label)
  if y_min <= TARGET <= y_max:
    ax.axhline(TARGET, color='#555', linestyle='--', linewidth=1,
               label="%.2f, the tutorial's figure" % TARGET)
  ax.set_ylim(y_min, y_max)
  ax.set_xlim(left=0)
  ax.set_xlabel('%s of training' % x_label)
  ax.set_ylabel('precision @ 1 (10,000 test images)')
  ax.set_title(title, loc='left', fontsize=12)
  ax.grid(color='#ddd')
  ax.legend(loc='lower right', fontsize='small')
  fig.tight_layout()
  # No timestamp in the SVG, so that a redrawn picture only differs where
  # the curves do.
  fig.savefig(output, metadata={'Date': None} if output.lower().endswith(
      '.svg') else None)
  plt.close(fig)


def main(argv=None):
  args = parse_args(argv)
  try:
    y_range = tuple(float(v) for v in args.y_range.split(','))
    assert len(y_range) == 2 and y_range[0] < y_range[1]
  except (ValueError, AssertionError):
    sys.exit('plot_curves: error: --y_range=%s is not MIN,MAX with MIN < MAX.'
             % args.y_range)
  curves = []
  for spec in args.curves:
    label, sep, path = spec.rpartition('=')
    if not sep or not label:
      sys.exit('plot_curves: error: %r is not LABEL=CSV.' % spec)
    curves.append((label, read_curve(path, args.x)))
  if os.path.splitext(args.output)[1].lower() not in FORMATS:
    sys.exit('plot_curves: error: --output=%s must end in .png or .svg.' %
             args.output)
  try:
    import matplotlib  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    sys.exit('plot_curves: error: ' + INSTALL_HINT)
  plot(curves, args.output, args.title, args.x, y_range)
  print('wrote', args.output)
  return 0


if __name__ == '__main__':
  sys.exit(main())
