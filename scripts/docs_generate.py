"""Writes the generated parts of README.md and docs/*.md.

  python scripts/docs_generate.py           # rewrite every generated block
  python scripts/docs_generate.py --check   # exit 1, naming each stale block

A generated block is the text between `<!-- generated: NAME -->` and
`<!-- end generated: NAME -->` on lines of their own; everything else in a
page is written by hand. Each NAME is made here from one home:

* the measured figures, from docs/*.json and docs/curve_*.csv (what each was
  measured on, when and with what, from docs/results.json);
* every command's flags, from the command's own define_flags() (the same
  definitions `--help` prints);
* the model's layers and the schedules, from cifar10/.

tests/test_docs_generated.py runs the check, so that no page shows a figure,
a flag or a layer that its home no longer has.
"""
import argparse
import csv
import glob
import importlib
import json
import os
import re
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, 'docs')
BLOCK = re.compile(r'(<!-- generated: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)'
                   r'(<!-- end generated: (?P=name) -->)', re.S)
IMAGES_PER_EPOCH = 50000


def load_results():
  with open(os.path.join(DOCS, 'results.json')) as f:
    return json.load(f)


def load_json(name):
  with open(os.path.join(DOCS, name)) as f:
    return json.load(f)


def read_curve(name):
  with open(os.path.join(DOCS, name)) as f:
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def curve_files():
  return sorted(os.path.basename(p)
                for p in glob.glob(os.path.join(DOCS, 'curve_*.csv')))


def benchmark_files():
  return sorted(os.path.basename(p)
                for p in glob.glob(os.path.join(DOCS, 'benchmark_*.json')))


# Formatting.

def number(value, digits=0):
  return '{:,.{}f}'.format(value, digits)


def precision(value):
  return '%.3f' % value


def percent(value):
  return '%.1f%%' % (100 * value)


def cell(text):
  return str(text).replace('|', '\\|').replace('\n', ' ')


def table(header, rows, align=None):
  align = align or ['---'] * len(header)
  lines = ['| ' + ' | '.join(header) + ' |', '| ' + ' | '.join(align) + ' |']
  lines += ['| ' + ' | '.join(cell(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines) + '\n'


def machine_name(results, key):
  return results['machines'][key]['name']


def machine_line(results, key, date, versions='default', shared=False):
  """One line: where and when a figure was measured, and with what."""
  machine = results['machines'][key]
  parts = ['**%s**: %s' % (machine['name'], machine['cpu'])]
  if machine.get('cores'):
    parts.append('%d cores, %d GiB' % (machine['cores'], machine['memory_gib']))
  version = results['versions'][versions]
  parts.append(', '.join('%s %s' % (
      {'python': 'Python', 'tensorflow': 'TensorFlow', 'keras': 'Keras',
       'torch': 'PyTorch'}[k], v) for k, v in version.items()))
  parts.append('measured %s' % date)
  if shared:
    parts.append('other work shared the cores, so its times are long')
  return '; '.join(parts) + '.'


def first_at_least(curve, target):
  for row in curve:
    if row['precision'] >= target:
      return row
  return None


# The results table (README).

def _time_to_target(results, entry, curve):
  target = results['target']
  reached = first_at_least(curve, target)
  how = entry['time_to_target']
  if reached is None and isinstance(how, dict):
    # How long its whole run takes at the benchmark's loop rate.
    rate = load_json(how['benchmark'])['loops'][how['loop']]
    return 'not reached (its %s epochs: %s min at %s examples/sec)' % (
        number(curve[-1]['epochs']),
        number(curve[-1]['epochs'] * IMAGES_PER_EPOCH / rate / 60, 1),
        number(rate))
  if reached is None:
    return 'not reached in %s min' % number(curve[-1]['minutes'])
  if how == 'timed':
    return '%s min (timed)' % number(reached['minutes'])
  rate = load_json(how['benchmark'])['loops'][how['loop']]
  minutes = reached['epochs'] * IMAGES_PER_EPOCH / rate / 60
  return '%s min (%s epochs at %s examples/sec)' % (
      number(minutes, 1), number(reached['epochs'], 1), number(rate))


def _lookup(results, path):
  """results[path[0]][path[1]]...; a first key ending in .json is that data
  file of docs/ instead."""
  value = results
  if str(path[0]).endswith('.json'):
    value, path = load_json(path[0]), path[1:]
  for key in path:
    if isinstance(value, list) and isinstance(key, str):
      value = [item for item in value if item.get('name') == key][0]
    else:
      value = value[key]
  return value


def results_rows(results, link_prefix=''):
  rows = []
  for entry in results['results']:
    if 'curve' in entry:
      meta = results['curves'][entry['curve']]
      curve = read_curve(entry['curve'])
      value = precision(curve[-1]['precision'])
      time = _time_to_target(results, entry, curve)
      machine, date = meta['machine'], meta['date']
      if isinstance(entry['time_to_target'], dict):
        bench = results['benchmarks'][entry['time_to_target']['benchmark']]
        if bench['date'] != date:
          date = '%s, speed %s' % (date, bench['date'])
      data = '[%s](%s%s)' % (entry['curve'], link_prefix, entry['curve'])
    elif 'value_from' in entry:
      value = precision(_lookup(results, entry['value_from']))
      time = (entry['time'] if 'time' in entry else
              '%s min' % number(_lookup(results, entry['time_from']), 1))
      machine, date = entry['machine'], entry['date']
      source = (entry['value_from'][0]
                if str(entry['value_from'][0]).endswith('.json')
                else 'results.json')
      data = '[%s](%s%s)' % (source, link_prefix, source)
    else:
      value = '~%s' % entry['value'] if entry.get('approximate') else (
          precision(entry['value']))
      time, machine, date = entry['time'], entry['machine'], entry['date']
      data = entry['source']
    rows.append([entry['what'], entry['setup'], '**%s**' % value, time,
                 machine_name(results, machine), date, data])
  for entry in results.get('pending', []):
    rows.append([entry['what'], entry['setup'], '', entry['note'], '', '', ''])
  return rows


def gen_results(results, link_prefix):
  return table(['result', 'set-up', 'accuracy', 'time to %s on 2 CPU cores'
                % results['target'], 'machine', 'date', 'data'],
               results_rows(results, link_prefix),
               ['---', '---', '---:', '---', '---', '---', '---'])


def gen_suite(results, link_prefix):
  del link_prefix
  suite = results['suite']
  seconds = suite['seconds']
  return ('`python -m pytest` runs the default suite (%s tests) in %s s on 2 '
          'cores (%s, %s, `%s` from a fresh clone, the install included).\n'
          % (number(suite['tests']),
             '-'.join(str(s) for s in sorted({min(seconds), max(seconds)})),
             machine_name(results, suite['machine']), suite['date'],
             suite['command']))


# The performance page.

def gen_machines(results, link_prefix):
  del link_prefix
  rows = [[m['name'], m['cpu'], m['cores'] or '', m['gpu']]
          for m in results['machines'].values()]
  return table(['machine', 'CPU', 'cores', 'GPU'], rows)


def gen_curves(results, link_prefix):
  del link_prefix
  rows = []
  for name in curve_files():
    meta = results['curves'][name]
    if not meta.get('current'):
      continue
    curve = read_curve(name)
    reached = first_at_least(curve, results['target'])
    rows.append([
        meta['label'], machine_name(results, meta['machine']), meta['date'],
        'yes' if meta.get('cores_shared') else 'no',
        number(curve[-1]['epochs'], 1), number(curve[-1]['minutes'], 1),
        '**%s**' % precision(curve[-1]['precision']),
        ('%s epochs, %s min' % (number(reached['epochs'], 1),
                                number(reached['minutes'], 1))
         if reached else 'not reached'),
        '[%s](%s)' % (name, name)])
  return table(['run', 'machine', 'date', 'cores shared', 'epochs', 'minutes',
                'precision @ 1 at the end', 'first checkpoint >= %s'
                % results['target'], 'data'], rows,
               ['---', '---', '---', '---', '---:', '---:', '---:', '---',
                '---'])


def gen_curve_commands(results, link_prefix):
  del link_prefix
  lines = []
  for name in curve_files():
    meta = results['curves'][name]
    if meta.get('current'):
      lines.append('# %s -> docs/%s' % (meta['label'], name))
      lines.append(meta['command'])
  return '```sh\n' + '\n'.join(lines) + '\n```\n'


def _median_ratios(targets):
  # The benchmark names each ratio with the target it was built for; the
  # page shows the ratio.
  return [[re.sub(r'\s*(>=\s*[\d.]+|\(no target\))', '', name),
           ', '.join('%.2f' % r for r in rounds),
           '**%.2f**' % statistics.median(rounds)]
          for name, rounds in targets.items()]


# The benchmark's names for its compute-only steps, as a reader needs them.
STEP_LABELS = {'this project': 'float32',
               'tf.nn.lrn': 'float32, LRN as tf.nn.lrn'}


def gen_speed(results, link_prefix):
  """One section per kind of machine: its current benchmark files."""
  del link_prefix
  by_machine = {}
  for name in benchmark_files():
    meta = results['benchmarks'][name]
    if meta.get('current'):
      by_machine.setdefault(meta['machine'], []).append(name)
  out = []
  for machine, names in by_machine.items():
    out.append('### %s\n' % results['machines'][machine]['cpu'])
    dates = sorted({results['benchmarks'][n]['date'] for n in names})
    # A benchmark run without PyTorch names the versions it ran with.
    versions = {results['benchmarks'][n].get('versions', 'benchmark')
                for n in names}
    out.append(machine_line(results, machine, ' and '.join(dates),
                            versions.pop() if len(versions) == 1
                            else 'benchmark') + '\n')
    for name in names:
      meta = results['benchmarks'][name]
      data = load_json(name)
      out.append('From [%s](%s), %s:\n' % (name, name, meta['date']))
      out.append('```sh\n%s\n```\n' % meta['command'])
      if meta.get('note'):
        out.append(meta['note'] + '\n')
      parts = meta.get('parts', 'loops steps').split()
      if 'steps' not in parts:
        data = {k: v for k, v in data.items()
                if k not in ('compute_only', 'pipeline', 'eval', 'profile',
                             'profile_mixed_bfloat16')}
      if 'loops' not in parts:
        data = {k: v for k, v in data.items() if k not in ('loops', 'targets')}
      rows = []
      for label, rate in data.get('compute_only', {}).items():
        rows.append(['train step alone, %s' % STEP_LABELS.get(label, label),
                     number(rate)])
      for part in data.get('pipeline', []):
        rows.append(['input pipeline alone, %s, %d thread%s (images/sec)'
                     % (part['name'], part['threads'],
                        's' if part['threads'] > 1 else ''),
                     number(part['pipeline'])])
      for label, rate in data.get('loops', {}).items():
        rows.append([label, number(rate)])
      out.append(table(['measured (batch 128)', 'examples/sec'], rows,
                       ['---', '---:']))
      if 'targets' in data:
        out.append('Ratios, each taken within one round:\n')
        out.append(table(['ratio', 'per round', 'median'],
                         _median_ratios(data['targets']),
                         ['---', '---', '---:']))
      if 'eval' in data:
        rows = [['cifar10_eval.py --run_once' + (' --eval_flip' if k == 'flip'
                                                  else ''),
                 '%s s' % number(v['seconds'], 2),
                 '%s s' % number(v['command_seconds'], 1)]
                for k, v in data['eval'].items()]
        out.append(table(['evaluation of %s test images' %
                          number(next(iter(data['eval'].values()))['images']),
                          'evaluation', 'with start-up'], rows,
                         ['---', '---:', '---:']))
      for key, title in (('profile', 'float32'),
                         ('profile_mixed_bfloat16', 'mixed_bfloat16')):
        if key in data:
          out.append('Where the time of the %s step goes (share of op time):\n'
                     % title)
          out.append(table(['part', 'share'],
                           [[p, percent(s)] for p, s in data[key]],
                           ['---', '---:']))
  return '\n'.join(out)


def measured(results, entry, note=''):
  """Where and when entry (its machine, date, cores_shared and command) was
  measured, note after it, then the command as a shell block."""
  return (machine_line(results, entry['machine'], entry['date'],
                       shared=entry.get('cores_shared')) + note + '\n\n' +
          '```sh\n%s\n```\n\n' % entry['command'])


def gen_mnist(results, link_prefix):
  del link_prefix
  mnist = results['mnist']
  rows = [[number(r['step']), '%.4f' % r['loss'], '%.4f' % r['accuracy']]
          for r in mnist['curve']]
  return (measured(results, mnist,
                   ' Training ran at %s examples/sec (%s minutes for %s steps, '
                   'the test-set evaluations included).' % (
                       number(mnist['examples_per_sec']),
                       number(mnist['minutes']),
                       number(mnist['curve'][-1]['step']))) +
          table(['step', 'test loss', 'test accuracy'], rows,
                ['---:', '---:', '---:']))


def gen_retraining(results, link_prefix):
  del link_prefix
  r = results['retraining']
  rows = [['new final layer on the exported `local4` features',
           percent(r['new_final_layer'])],
          ['small CNN trained from scratch on the same %s training images'
           % number(r['training_images']), percent(r['small_cnn_from_scratch'])]]
  return (measured(results, r,
                   ' %s retraining steps; %s minutes after the extractor\'s '
                   '~%s minutes of training.' % (number(r['steps']),
                                                  r['minutes'],
                                                  r['extractor_minutes'])) +
          table(['model', 'test accuracy (N=%d)' % r['test_images']], rows,
                ['---', '---:']))


def gen_export(results, link_prefix):
  del link_prefix
  e = results['export']
  agree = e['top1_agreement_with_savedmodel']
  rows = [[name, '%.4f' % value + (' (top-1 agrees with the SavedModel on %s)'
                                   % percent(agree[name]) if name in agree
                                   else '')]
          for name, value in e['precision'].items()]
  tables = [
      table(['precision @ 1 on the 10,000 test images', ''], rows,
            ['---', '---:']),
      table(['latency (median ms)', 'one image', 'batch of 100'],
            [[k, '%.2f' % v[0], '%.1f' % v[1]]
             for k, v in e['latency_ms'].items()],
            ['---', '---:', '---:']),
      table(['file', 'size'], [[k, '%.2f MB' % (v / 1e6)]
                               for k, v in e['bytes'].items()],
            ['---', '---:'])]
  return (measured(results, e, ' Checkpoint: `%s`.' % e['checkpoint']) +
          '\n'.join(tables))


def gen_towers(results, link_prefix):
  del link_prefix
  t = results['towers']
  items = list(t['examples_per_sec'].items())
  base = items[0][1]
  rows = [[k, number(v, 1), '%.2f' % (v / base)] for k, v in items]
  return (measured(results, t) +
          table(['configuration', 'examples/sec', 'ratio'], rows,
                ['---', '---:', '---:']))


# The reliability page.

def gen_fuzz(results, link_prefix):
  del link_prefix
  fuzz = results['fuzz']
  progress = load_json(fuzz['file'])
  rows = []
  for name, p in sorted(progress.items()):
    rows.append(['`%s`' % name.replace('tests/', ''), number(p['examples']),
                 str(p['failed']), number(p['seconds'] / 60, 1)])
  total = sum(p['examples'] for p in progress.values())
  failed = sum(p['failed'] for p in progress.values())
  machines = ', '.join(machine_name(results, m) for m in fuzz['machines'])
  return ('%s examples in all, %s failed; %s minutes of chunk time, on %s, %s; '
          'Hypothesis %s. From [%s](%s).\n\n' % (
              number(total), number(failed),
              number(sum(p['seconds'] for p in progress.values()) / 60),
              machines, fuzz['dates'], fuzz['hypothesis'], fuzz['file'],
              fuzz['file']) +
          table(['property', 'examples passed', 'failed', 'minutes'], rows,
                ['---', '---:', '---:', '---:']))


def gen_soak(results, link_prefix):
  del link_prefix
  soak = results['soak']
  s = load_json(soak['file'])
  lost = sorted(s['steps_lost'])
  rows = [
      ['kills survived', '%d of %d (the last trainer then ran to step %s, '
       'status %d)' % (s['kills'] if s['trainer_status'] == 0 else 0,
                       s['kills_asked'], number(s['max_steps']),
                       s['trainer_status'])],
      ['steps lost per kill', 'median %s, most %d (one checkpoint every %s '
       'steps)' % (number(statistics.median(lost)), lost[-1],
                   number(s['steps_per_checkpoint']))],
      ['checkpoints unreadable after a kill', '**%d**'
       % s['unreadable_checkpoints']],
      ['the evaluator beside it', '%s: %d checkpoints evaluated' % (
          'kept going' if s['evaluator_kept_going'] else 'stopped',
          s['checkpoints_evaluated'])],
      ['precision @ 1 after %s steps' % number(s['max_steps']),
       '%s killed %d times, %s never killed' % (
           precision(s['killed_precision']), s['kills'],
           precision(s['unkilled_precision']))]]
  return (measured(results, soak,
                   ' From [%s](%s).' % (soak['file'], soak['file'])) +
          table(['', ''], rows))


# From the code: the model, the schedules, the flags.

def _import(name):
  if REPO not in sys.path:
    sys.path.insert(0, REPO)
  # Loading TensorFlow quietly first, as the commands do.
  from tutorials_common import console  # pylint: disable=g-import-not-at-top
  console.quiet_tensorflow()
  return importlib.import_module(name)


def model_layers():
  """[(layer, output shape, parameters)] of cifar10.inference, from the code."""
  cifar10 = _import('cifar10.cifar10')
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default() as graph:
    images = tf.placeholder(tf.float32, [None, 24, 24, 3], name='images')
    cifar10.inference(images)
    rows = [('images', images.shape.as_list()[1:], 0)]
    names = ['conv1', 'pool1', 'norm1', 'conv2', 'norm2', 'pool2', 'local3',
             'local4', 'softmax_linear']
    variables = tf.trainable_variables()
    for name in names:
      ops = [op for op in graph.get_operations()
             if op.name == name or op.name.endswith('/' + name)]
      shape = ops[-1].outputs[0].shape.as_list()[1:]
      count = sum(v.shape.num_elements() for v in variables
                  if v.op.name.startswith(name + '/'))
      rows.append((name, shape, count))
  return rows


LAYER_TEXT = {
    'images': 'the 24x24 crop, standardised',
    'conv1': 'convolution 5x5, 64 filters, stride 1, + bias, ReLU',
    'pool1': 'max pooling 3x3, stride 2',
    'norm1': 'local response normalisation (depth radius 4)',
    'conv2': 'convolution 5x5, 64 filters, + bias, ReLU',
    'norm2': 'local response normalisation',
    'pool2': 'max pooling 3x3, stride 2',
    'local3': 'fully connected, 384 units, ReLU, weight decay 0.004',
    'local4': 'fully connected, 192 units, ReLU, weight decay 0.004',
    'softmax_linear': 'linear, 10 logits (the softmax is in the loss)',
}


def gen_model(results, link_prefix):
  del results, link_prefix
  layers = model_layers()
  rows = [['`%s`' % name, LAYER_TEXT.get(name, ''),
           ' x '.join(str(d) for d in shape), number(count) if count else '']
          for name, shape, count in layers]
  rows.append(['', '**total**', '', '**%s**' % number(sum(
      count for _, _, count in layers))])
  return table(['layer', 'what it does', 'output (per image)', 'parameters'],
               rows, ['---', '---', '---', '---:'])


def gen_schedules(results, link_prefix):
  del results, link_prefix
  schedules = _import('cifar10.schedules')
  rows = []
  for name in schedules.SCHEDULES:
    s = schedules.Schedule(name)
    fast = s.last_step is not None
    optimizer = ('SGD' if name == 'tutorial' else
                 'Nesterov momentum %g' % getattr(schedules, 'FAST_MOMENTUM',
                                                  0.9))
    if fast:
      rate = 'rises to %g over %g%% of the steps, falls to 0 at the end' % (
          s.peak_learning_rate, 100 * s.warmup_fraction)
      length = '%s epochs (%s steps of 128), then stops' % (
          number(s.last_step * 128 / IMAGES_PER_EPOCH), number(s.last_step))
    else:
      rate = '%g, divided by %g every %g epochs' % (
          schedules.INITIAL_LEARNING_RATE,
          1 / schedules.LEARNING_RATE_DECAY_FACTOR,
          schedules.NUM_EPOCHS_PER_DECAY)
      length = 'until `--max_steps`'
    rows.append(['`%s`' % name, optimizer, rate, length,
                 '%g' % s.label_smoothing, '%g' % s.moving_average_decay,
                 'yes' if s.color_jitter else 'no',
                 'within %d pixels of the centre' % s.crop_shift])
  return table(['`--schedule`', 'optimizer', 'learning rate', 'length',
                'label smoothing', 'moving-average decay',
                'brightness/contrast jitter', 'training crops'], rows)


def command_flags(module_name):
  """[(name, default, help)] of the flags a command's define_flags() adds."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  module = _import(module_name)
  values = flags.FLAGS
  before = {name: values[name] for name in values}
  module.define_flags()
  try:
    found = []
    for name in values:
      flag = values[name]
      if before.get(name) is not flag and name == flag.name:
        found.append((name, flag.default, flag.help, flag))
    return sorted(found, key=lambda f: f[0]), (module.__doc__ or '').strip()
  finally:
    for name in list(values):
      if before.get(name) is not values[name]:
        delattr(values, name)
        if name in before:
          values[name] = before[name]
    values.unparse_flags()


def default_text(value):
  if value is None:
    return 'unset'
  if isinstance(value, str):
    return '`%s`' % value if value else '`""`'
  if isinstance(value, (list, tuple)):
    return '`%s`' % ','.join(str(v) for v in value) if value else '`""`'
  return '`%s`' % (value,)


def commands():
  return _import('cli_support.launch').COMMANDS


# Where the documentation teaches each command (a page and its section).
TAUGHT_IN = {
    'cifar10_train': 'cifar10-tutorial.md#launching-and-training-the-model',
    'cifar10_eval': 'cifar10-tutorial.md#evaluating-a-model',
    'cifar10_multi_gpu_train': 'cifar10-tutorial.md#training-on-several-gpus',
    'cifar10_distributed_train':
        'cifar10-tutorial.md#training-on-several-machines',
    'cifar10_predict': 'using-the-model.md#classify-your-own-pictures',
    'cifar10_export':
        'using-the-model.md#export-for-tensorflow-serving-and-tensorflow-lite',
    'mnist_deep': 'mnist.md#train',
    'mnist_predict': 'mnist.md#predict-look-inside-draw',
    'mnist_feature_maps': 'mnist.md#predict-look-inside-draw',
    'mnist_draw_server': 'mnist.md#predict-look-inside-draw',
    'retrain': 'retraining.md#retrain-on-your-own-images',
    'label_image': 'retraining.md#retrain-on-your-own-images',
    'export_cifar10_features':
        'retraining.md#fully-offline-a-cifar-10-feature-extractor',
    'cifar10_to_folders':
        'retraining.md#fully-offline-a-cifar-10-feature-extractor',
}


def gen_commands(results, link_prefix):
  """Every command, the first line of its docstring, where it is taught."""
  del results
  rows = []
  for command, module_name in commands().items():
    _, doc = command_flags(module_name)
    page = TAUGHT_IN.get(command, 'reference.md#' + command)
    rows.append(['`%s`' % command, doc.splitlines()[0] if doc else '',
                 '[%s](%s%s)' % (page.split('.md')[0].replace('-', ' '),
                                 link_prefix, page),
                 '[flags](%sreference.md#%s)' % (link_prefix, command)])
  return table(['command', 'what it does', 'taught in', 'reference'], rows)


def gen_flags(results, link_prefix):
  del results, link_prefix
  out = []
  for command, module_name in commands().items():
    found, doc = command_flags(module_name)
    out.append('### %s\n' % command)
    if doc:
      out.append(doc.splitlines()[0] + '\n')
    out.append('`%s --help` prints the same list. Module: `%s`.\n' % (
        command, module_name.replace('.', '/') + '.py'))
    out.append(table(['flag', 'default', 'meaning'],
                     [['`--%s`' % name, default_text(default),
                       ' '.join(help_text.split()).replace(
                           '<', '&lt;').replace('>', '&gt;')]
                      for name, default, help_text, _ in found]))
  return '\n'.join(out)


def _nearest(curve, epochs):
  """The curve's point nearest epochs (within 2.5 epochs), as text."""
  near = [p for p in curve if abs(p[0] - epochs) <= 2.5]
  if not near:
    return ''
  at, value = min(near, key=lambda p: abs(p[0] - epochs))
  return '%s (%s)' % (precision(value), number(at, 1))


def gen_fast25(results, link_prefix):
  """The 25-epoch runs: what each change to fast50 gave."""
  del link_prefix
  data = load_json('fast25_variants.json')
  rows = []
  for variant in data['variants']:
    final = variant['final'] or {}
    rows.append([variant['change'], variant['precision']] +
                [_nearest(variant['curve'], e) for e in (5, 10, 15, 20, 25)] +
                [precision(final[k]) if k in final else 'stopped'
                 for k in ('central_crop', 'flip', 'five_crops_and_mirrors')])
  return (measured(results, data,
                   ' From [fast25_variants.json](fast25_variants.json).') +
          table(['change to fast50 over 25 epochs', 'precision', '~5 epochs',
                 '~10', '~15', '~20', '~25', 'end: central crop',
                 'end: + mirror', 'end: 5 crops + mirrors'], rows,
                ['---', '---'] + ['---:'] * 8))


GENERATORS = {
    'fast25': gen_fast25,
    'results': gen_results,
    'suite': gen_suite,
    'machines': gen_machines,
    'curves': gen_curves,
    'curve-commands': gen_curve_commands,
    'speed': gen_speed,
    'mnist': gen_mnist,
    'retraining': gen_retraining,
    'export': gen_export,
    'towers': gen_towers,
    'fuzz': gen_fuzz,
    'soak': gen_soak,
    'model': gen_model,
    'schedules': gen_schedules,
    'commands': gen_commands,
    'flags': gen_flags,
}


def pages():
  found = [os.path.join(REPO, 'README.md')]
  found += sorted(glob.glob(os.path.join(DOCS, '**', '*.md'), recursive=True))
  return found


def check_data(results):
  """Problems with the data files' records: each must say where it came from."""
  problems = []
  for name in curve_files():
    if name not in results['curves']:
      problems.append('docs/%s has no entry under "curves" in docs/results.json'
                      ' (its machine, date and command)' % name)
  for name in benchmark_files():
    if name not in results['benchmarks']:
      problems.append('docs/%s has no entry under "benchmarks" in '
                      'docs/results.json' % name)
  for group in ('curves', 'benchmarks'):
    for name, meta in results[group].items():
      if meta['machine'] not in results['machines']:
        problems.append('%s: unknown machine %r' % (name, meta['machine']))
  return problems


def generate(path, results, cache):
  """The page's text with every generated block made afresh; its blocks."""
  with open(path) as f:
    text = f.read()
  # Links from README.md go into docs/; from a page, they stay beside it.
  prefix = 'docs/' if os.path.dirname(path) == REPO else ''
  depth = os.path.relpath(os.path.dirname(path), DOCS).count(os.sep)
  if prefix == '' and os.path.relpath(os.path.dirname(path), DOCS) != '.':
    prefix = '../' * (depth + 1)
  names = []

  def replace(match):
    name = match.group('name')
    if name not in GENERATORS:
      raise KeyError('%s: unknown generated block %r' % (path, name))
    names.append(name)
    key = (name, prefix)
    if key not in cache:
      cache[key] = GENERATORS[name](results, prefix)
    return match.group(1) + cache[key] + match.group(4)

  return text, BLOCK.sub(replace, text), names


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--check', action='store_true',
                      help='Change nothing; exit 1 if a block is stale.')
  args = parser.parse_args(argv)
  results = load_results()
  problems = check_data(results)
  cache = {}
  for path in pages():
    old, new, names = generate(path, results, cache)
    if old != new:
      rel = os.path.relpath(path, REPO)
      if args.check:
        problems.append('%s is stale (blocks: %s): run python '
                        'scripts/docs_generate.py' % (rel, ', '.join(names)))
      else:
        with open(path, 'w') as f:
          f.write(new)
        print('wrote %s' % rel)
  for problem in problems:
    print(problem, file=sys.stderr)
  return 1 if problems else 0


if __name__ == '__main__':
  sys.exit(main())
