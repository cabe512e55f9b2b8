"""Draws precision @ 1 against minutes of training for one or more curves, as SVG.

  python scripts/plot_curves.py --output=docs/time_to_accuracy.svg \
      "tutorial schedule=docs/curve_tutorial.csv" "fast schedule=docs/curve_fast.csv"

Each argument is LABEL=CSV, a curve written by scripts/cifar10_real_data.py
(columns step, minutes, precision, ...). The SVG needs nothing to draw it but
the browser or viewer that shows the README.
"""
import argparse
import csv
import sys

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 20, 50
COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd']
TARGET = 0.86  # The tutorial's published precision @ 1.
# Grid spacings to choose from, for about ten lines on either axis.
STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output', required=True, help='SVG file to write.')
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


def _grid_step(span):
  return next(step for step in STEPS if span / step <= 10)


def svg(curves, title, x_label='minutes', y_range=(0.7, 0.9)):
  y_min, y_max = y_range
  y_tick = _grid_step(y_max - y_min)
  x_tick = _grid_step(max(m for _, points in curves for m, _ in points))
  x_max = x_tick * int(max(m for _, points in curves for m, _ in points) /
                       x_tick + 1)
  plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

  def x(minutes):
    return LEFT + plot_w * minutes / x_max

  def y(precision):
    return TOP + plot_h * (y_max - precision) / (y_max - y_min)

  parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (WIDTH, HEIGHT),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="14" font-size="14">%s</text>' % (LEFT, title)]
  for tick in range(int(round((y_max - y_min) / y_tick)) + 1):
    value = y_min + tick * y_tick
    parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                 % (LEFT, WIDTH - RIGHT, y(value), y(value)))
    parts.append('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>' %
                 (LEFT - 6, y(value) + 4, value))
  for tick in range(int(round(x_max / x_tick)) + 1):
    value = tick * x_tick
    parts.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/>'
                 % (x(value), x(value), TOP, HEIGHT - BOTTOM))
    parts.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>' %
                 (x(value), HEIGHT - BOTTOM + 16, value))
  parts.append('<text x="%d" y="%d" text-anchor="middle">%s of training'
               '</text>' % (LEFT + plot_w / 2, HEIGHT - 12, x_label))
  parts.append('<text transform="translate(16,%d) rotate(-90)" '
               'text-anchor="middle">precision @ 1 (10,000 test images)</text>'
               % (TOP + plot_h / 2))
  if y_min <= TARGET <= y_max:
    parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#555" '
                 'stroke-dasharray="6,4"/>' % (LEFT, WIDTH - RIGHT, y(TARGET),
                                               y(TARGET)))
    parts.append('<text x="%d" y="%.1f" fill="#555">%.2f, the tutorial\'s '
                 'figure</text>' % (LEFT + 6, y(TARGET) - 5, TARGET))
  for i, (label, points) in enumerate(curves):
    colour = COLOURS[i % len(COLOURS)]
    points = [(m, p) for m, p in points if p >= y_min]
    parts.append('<polyline fill="none" stroke="%s" stroke-width="2" '
                 'points="%s"/>' % (colour, ' '.join(
                     '%.1f,%.1f' % (x(m), y(p)) for m, p in points)))
    for m, p in points:
      parts.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' %
                   (x(m), y(p), colour))
    legend_y = HEIGHT - BOTTOM - 20 - 18 * (len(curves) - 1 - i)
    parts.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" '
                 'stroke-width="2"/>' % (WIDTH - 330, WIDTH - 306, legend_y,
                                          legend_y, colour))
    parts.append('<text x="%d" y="%d">%s</text>' % (WIDTH - 300, legend_y + 4,
                                                    label))
  parts.append('</svg>')
  return '\n'.join(parts) + '\n'


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
  with open(args.output, 'w') as f:
    f.write(svg(curves, args.title, args.x, y_range))
  print('wrote', args.output)
  return 0


if __name__ == '__main__':
  sys.exit(main())
