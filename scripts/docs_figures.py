"""Draws the documentation's pictures into docs/images/.

  python scripts/docs_figures.py            # draw every picture
  python scripts/docs_figures.py --check    # exit 1 if one is out of date

* cifar10_layers.svg: the CIFAR-10 network's layers, from cifar10.inference
  (each layer's output shape and parameters), and the parameters per layer;
* cifar10_distortions.png: one training picture and its random distortions,
  through cifar10.kernels.distort_batch, the function training uses;
* curves_minutes.svg, curves_epochs.svg: precision @ 1 of the current runs
  of docs/curve_*.csv (docs/results.json says which are current).

Each picture's inputs (the layer table, the distortion settings, the curves'
data, this script) are hashed into docs/images/figures.json; --check (and
tests/test_docs_generated.py) recompute the hashes and name any picture
drawn from other inputs than today's. matplotlib comes with the charts,
notebook and test extras.
"""
import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docs_generate  # noqa: E402  pylint: disable=g-import-not-at-top

REPO = docs_generate.REPO
IMAGES = os.path.join(docs_generate.DOCS, 'images')
RECORD = os.path.join(IMAGES, 'figures.json')
# A real training picture where the data set is at hand (any folder holding
# cifar-10-batches-bin/), else a picture made here.
DATA_DIRS = [os.path.join(REPO, '..', 'shared', 'datasets', 'cifar10'),
             '/tmp/cifar10_data']
PICTURE_INDEX = 7  # Of data_batch_1: a horse, in the real data set.
# The distortions drawn: (crop row, crop column, mirror, brightness change,
# contrast factor), each within what training draws at random.
DISTORTIONS = [(4, 4, False, 0.0, 1.0), (0, 0, False, 0.0, 1.0),
               (8, 8, False, 0.0, 1.0), (4, 4, True, 0.0, 1.0),
               (2, 6, True, 40.0, 1.0), (6, 1, False, -50.0, 1.0),
               (3, 5, False, 0.0, 0.3), (5, 2, True, 20.0, 1.7)]
COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b',
           '#e377c2', '#17becf']


def _hash(*parts):
  digest = hashlib.sha256()
  for part in parts:
    digest.update(json.dumps(part, sort_keys=True, default=str).encode())
  return digest.hexdigest()


def _script_source():
  with open(os.path.abspath(__file__).replace('.pyc', '.py')) as f:
    return f.read()


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  matplotlib.rcParams['svg.fonttype'] = 'none'
  matplotlib.rcParams['svg.hashsalt'] = 'docs'
  return plt


def _save(fig, name):
  path = os.path.join(IMAGES, name)
  metadata = {'Date': None} if name.endswith('.svg') else {'Software': None}
  fig.savefig(path, metadata=metadata, bbox_inches='tight')
  print('wrote docs/images/%s' % name)


# The layers.

def layers_inputs():
  return [list(map(lambda v: v if not isinstance(v, list) else list(v), row))
          for row in docs_generate.model_layers()]


def draw_layers(layers):
  plt = _pyplot()
  kinds = {'conv': '#1f77b4', 'pool': '#2ca02c', 'norm': '#9467bd',
           'local': '#ff7f0e', 'softmax': '#d62728', 'images': '#7f7f7f'}
  fig, (top, bottom) = plt.subplots(
      2, 1, figsize=(12, 5.6), gridspec_kw={'height_ratios': [1.2, 1]})
  top.set_xlim(-0.6, len(layers) - 0.4)
  top.set_ylim(0, 1)
  top.axis('off')
  for i, (name, shape, count) in enumerate(layers):
    colour = next(c for k, c in kinds.items() if name.startswith(k))
    top.add_patch(plt.Rectangle((i - 0.42, 0.15), 0.84, 0.7, color=colour,
                                alpha=0.18))
    top.text(i, 0.68, name, ha='center', va='center', fontsize=10,
             fontweight='bold')
    top.text(i, 0.45, ' x '.join(str(d) for d in shape), ha='center',
             va='center', fontsize=9.5)
    top.text(i, 0.27, '%s params' % format(count, ',') if count else (
             'input' if name == 'images' else 'no weights'),
             ha='center', va='center', fontsize=8.5)
    if i:
      top.annotate('', xy=(i - 0.42, 0.5), xytext=(i - 0.58, 0.5),
                   arrowprops=dict(arrowstyle='->', lw=1))
  top.set_title('CIFAR-10 network: each layer and the shape of its output '
                '(%s parameters)' % format(sum(c for _, _, c in layers), ','),
                fontsize=10)
  names = [name for name, _, count in layers if count]
  counts = [count for _, _, count in layers if count]
  bottom.bar(names, counts, color=[next(c for k, c in kinds.items()
                                        if n.startswith(k)) for n in names])
  bottom.set_yscale('log')
  bottom.set_xlabel('layer (those with weights)')
  bottom.set_ylabel('parameters (log scale)')
  for x, count in enumerate(counts):
    bottom.text(x, count, format(count, ','), ha='center', va='bottom',
                fontsize=8)
  bottom.set_ylim(1e3, 3e6)
  fig.tight_layout()
  _save(fig, 'cifar10_layers.svg')
  plt.close(fig)


# The distortions.

def _picture():
  """(uint8 [32, 32, 3] picture, where it came from)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  for folder in DATA_DIRS:
    path = os.path.join(folder, 'cifar-10-batches-bin', 'data_batch_1.bin')
    if os.path.exists(path):
      with open(path, 'rb') as f:
        f.seek(PICTURE_INDEX * 3073)
        record = np.frombuffer(f.read(3073), np.uint8)
      return record[1:].reshape(3, 32, 32).transpose(1, 2, 0), 'CIFAR-10'
  y, x = np.mgrid[0:32, 0:32]
  picture = np.stack([4 * x + 60, 4 * y + 40, 200 - 3 * (x + y) // 2], -1)
  picture[10:22, 12:20] = [230, 200, 40]
  return picture.clip(0, 255).astype(np.uint8), 'generated'


def distortions_inputs():
  """What the distortions picture shows: its settings and the crop size.

  (Not the picture it starts from, which depends on whether the real data
  set is at hand.)"""
  cifar10_input = docs_generate._import('cifar10.cifar10_input')  # pylint: disable=protected-access
  return dict(distortions=DISTORTIONS, size=cifar10_input.IMAGE_SIZE,
              original=cifar10_input.ORIGINAL_SIZE)


def draw_distortions():
  import numpy as np  # pylint: disable=g-import-not-at-top
  cifar10_input = docs_generate._import('cifar10.cifar10_input')  # pylint: disable=protected-access
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  picture, _ = _picture()
  rows, cols, flips, bright, contrast = map(list, zip(*DISTORTIONS))
  with tf.Graph().as_default(), tf.Session() as session:
    batch = tf.constant(np.repeat(picture[None], len(DISTORTIONS), 0))
    # The function training's distort_images calls, with chosen settings
    # in place of its random ones.
    kernels = docs_generate._import('cifar10.kernels')  # pylint: disable=protected-access
    out = session.run(kernels.distort_batch(
        batch, tf.constant(rows), tf.constant(cols), tf.constant(flips),
        tf.constant(bright, tf.float32), tf.constant(contrast, tf.float32),
        size=cifar10_input.IMAGE_SIZE))
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(DISTORTIONS) + 1, figsize=(13, 2.3))
  axes[0].imshow(picture, interpolation='nearest')
  axes[0].set_title('original 32x32', fontsize=9)
  for ax, image, (r, c, flip, b, k) in zip(axes[1:], out, DISTORTIONS):
    # Standardised values shown as -2.5..2.5 standard deviations.
    ax.imshow(np.clip((image + 2.5) / 5, 0, 1), interpolation='nearest')
    label = 'crop at (%d,%d)' % (r, c)
    label += '\nmirrored' if flip else ''
    label += ('\nbrightness %+d' % b) if b else ''
    label += ('\ncontrast x%.1f' % k) if k != 1 else ''
    ax.set_title(label, fontsize=8)
  for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
  axes[1].set_xlabel('24x24, standardised', fontsize=8)
  fig.tight_layout()
  _save(fig, 'cifar10_distortions.png')
  plt.close(fig)


# The curves.

def curves_inputs():
  results = docs_generate.load_results()
  current = {name: results['curves'][name]
             for name in docs_generate.curve_files()
             if results['curves'].get(name, {}).get('current')}
  return dict(meta=current, target=results['target'],
              machines={m['machine']: results['machines'][m['machine']]
                        for m in current.values()},
              data={name: docs_generate.read_curve(name) for name in current})


def draw_curves(inputs):
  plt = _pyplot()
  target = inputs['target']
  for x, name, title, only in (
      ('minutes', 'curves_minutes.svg',
       'precision @ 1 against minutes of training, on one machine',
       lambda meta: not meta.get('cores_shared')),
      ('epochs', 'curves_epochs.svg',
       'precision @ 1 against epochs (50,000 pictures each)',
       lambda meta: True)):
    fig, ax = plt.subplots(figsize=(7.5, 4.3))
    for i, (file_name, meta) in enumerate(inputs['meta'].items()):
      if not only(meta):
        continue
      rows = [r for r in inputs['data'][file_name] if r['precision'] >= 0.7]
      machine = inputs['machines'][meta['machine']]['name']
      ax.plot([r[x] for r in rows], [r['precision'] for r in rows], 'o-',
              color=COLOURS[i % len(COLOURS)], markersize=3.5,
              label='%s (%s, %s)' % (meta['label'], machine, meta['date']))
    ax.axhline(target, color='grey', linestyle='--', linewidth=1)
    ax.text(ax.get_xlim()[0], target + 0.002, " the tutorial's %.2f" % target,
            fontsize=8, color='grey')
    ax.set_xlabel(x if x == 'epochs' else 'minutes of training (2 CPU cores)')
    ax.set_ylabel('precision @ 1 on the 10,000 test pictures')
    ax.set_ylim(0.7, 0.9)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc='lower right')
    fig.tight_layout()
    _save(fig, name)
    plt.close(fig)


def inputs_hashes():
  """{picture: hash of what it is drawn from}, without drawing anything."""
  source = _script_source()
  curves = curves_inputs()
  hashes = {'cifar10_layers.svg': _hash(source, layers_inputs()),
            'cifar10_distortions.png': _hash(source, distortions_inputs())}
  for name in ('curves_minutes.svg', 'curves_epochs.svg'):
    hashes[name] = _hash(source, curves)
  return hashes


def stale():
  """Pictures missing or drawn from other inputs than today's."""
  try:
    with open(RECORD) as f:
      recorded = json.load(f)
  except FileNotFoundError:
    recorded = {}
  return sorted(name for name, digest in inputs_hashes().items()
                if recorded.get(name) != digest or
                not os.path.exists(os.path.join(IMAGES, name)))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--check', action='store_true',
                      help='Draw nothing; exit 1 if a picture is out of date.')
  args = parser.parse_args(argv)
  if args.check:
    names = stale()
    for name in names:
      print('docs/images/%s is out of date: run python scripts/docs_figures.py'
            % name, file=sys.stderr)
    return 1 if names else 0
  os.makedirs(IMAGES, exist_ok=True)
  draw_layers(layers_inputs())
  draw_distortions()
  draw_curves(curves_inputs())
  with open(RECORD, 'w') as f:
    json.dump(inputs_hashes(), f, indent=1, sort_keys=True)
    f.write('\n')
  return 0


if __name__ == '__main__':
  sys.exit(main())
