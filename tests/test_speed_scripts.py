"""The speed benchmark, its Keras and PyTorch references, and the curve plot,
run as a user runs them on small data."""
import json
import os
import re
import statistics

import pytest

import cifar_fixtures
from cifar_fixtures import run_script
import suite_helpers

RATE_LINE = re.compile(r'^\d{4}-\d\d-\d\d [\d:.]+: step (\d+), loss = [\d.]+ '
                       r'\(([\d.]+) examples/sec; [\d.]+ sec/batch\)$', re.M)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return cifar_fixtures.write_dataset(tmp_path_factory.mktemp('data'),
                                      records_per_file=60)


@pytest.mark.parametrize('script', ['cifar10_keras.py', 'cifar10_torch.py'])
def test_reference_trains_and_logs_like_cifar10_train(data_dir, script):
  if script == 'cifar10_torch.py':
    pytest.importorskip('torch', reason="PyTorch is the optional extra "
                        "'.[torch]', used only by this speed reference")
  result = run_script([os.path.join('scripts', script), '--data_dir', data_dir,
                       '--steps', '30', '--batch_size', '32'])
  assert result.returncode == 0, result.stderr
  steps = [int(s) for s, _ in RATE_LINE.findall(result.stdout)]
  assert steps == [10, 20, 30]
  assert re.search(r'^(Keras .* backend tensorflow|PyTorch .* threads)',
                   result.stdout, re.M)


def test_torch_reference_model_matches_the_tutorial_parameter_count():
  torch = pytest.importorskip('torch', reason="PyTorch is the optional extra "
                              "'.[torch]', used only by this speed reference")
  net = suite_helpers.load_script('cifar10_torch.py').Net()
  assert sum(p.numel() for p in net.parameters()) == 1068298
  assert net(torch.zeros(3, 3, 24, 24)).shape == (3, 10)


@pytest.fixture(scope='module')
def benchmark_speed():
  """scripts/benchmark_speed.py as a module, for its parts in process."""
  return suite_helpers.load_script('benchmark_speed.py')


def _canned_figures():
  """Figures of the shape a real run gathers, with round numbers."""
  def pipeline(name, threads, rate, training):
    return dict(name=name, threads=threads, fill_seconds=1.0, pipeline=rate,
                training=training)
  return {
      'machine': dict(cpu='Test CPU', cores=2, vector='avx2 avx512f',
                      tensorflow='2.x'),
      'pipeline': [pipeline("tutorial's per-image queue runners", 16, 10000,
                            800),
                   pipeline('batched', 1, 40000, 1000),
                   pipeline('batched', 2, 50000, 1000),
                   pipeline('batched', 4, 50000, 1000),
                   pipeline('batched, distortions as TensorFlow ops', 2,
                            25000, 990)],
      'compute_only': {'this project': 1000.0, 'tf.nn.lrn': 800.0,
                       'mixed_bfloat16': 1500.0,
                       'mixed_bfloat16, LRN as float32 ops': 1200.0,
                       'mixed_bfloat16, LRN as bfloat16 ops': 1125.0,
                       'float32, LRN as TensorFlow ops': 950.0,
                       'float32, LRN in XLA': 1100.0,
                       'mixed_bfloat16, LRN in XLA': 1200.0},
      'bfloat16_lrn': 'fused LRN kernel',
      'loops': {'train step alone, float32': 1000.0,
                'cifar10_train.py': 960.0,
                'cifar10_train.py, LRN kernel off': 800.0,
                'train step alone, mixed_bfloat16': 1500.0,
                'cifar10_train.py --precision=mixed_bfloat16': 1440.0,
                'cifar10_train.py --precision=mixed_bfloat16, LRN kernel off':
                    1152.0,
                'cifar10_train.py --precision=mixed_bfloat16, distortions '
                'kernel off': 1200.0,
                'Keras model.fit': 640.0,
                'Keras model.fit, mixed_bfloat16': 960.0},
      'eval': {'plain': dict(seconds=1.5, command_seconds=4.0, images=10000),
               'flip': dict(seconds=2.5, command_seconds=5.0, images=10000)},
      'memory': dict(rss_at_2_min=1000.0, rss_at_end=1010.0, peak_rss=1020.0,
                     growth=0.01, minutes=10.0, early_rate=1, late_rate=1),
  }


# A number as the tables print it; not the digits of a name (cifar10,
# mixed_bfloat16).
NUMBER = r'(?<![\w.])[-+]?\d+(?:\.\d+)?'


def _table(out, header):
  """The rows of the Markdown table under header, each a list of its cells."""
  lines = out.splitlines()
  assert lines.count(header) == 1, header
  start = lines.index(header)
  assert set(lines[start + 1]) <= set('|-: '), lines[start + 1]
  rows = []
  for line in lines[start + 2:]:
    if not line.startswith('|'):
      break
    assert line.endswith('|'), line
    rows.append([cell.strip() for cell in line[1:-1].split('|')])
  assert all(len(row) == len(rows[0]) for row in rows)
  return rows


def _agrees(cell, expected):
  """Whether the numbers printed in cell are, in order, the expected ones
  rounded as printed (to within half their last digit)."""
  printed = re.findall(NUMBER, cell)
  if len(printed) != len(expected):
    return False
  for text, value in zip(printed, expected):
    decimals = len(text.split('.')[1]) if '.' in text else 0
    if abs(float(text) - value) > 0.5 * 10 ** -decimals + 1e-9:
      return False
  return True


def _expected_table(benchmark_speed, figures, limit):
  """The rows the table should have, in order: (label, unit of the figure,
  the figures, what follows the ratio's first number, the numbers of the
  ratio), each ratio computed here from the figures it compares."""
  loops, compute = figures['loops'], figures['compute_only']
  ours, this_lrn = loops['cifar10_train.py'], compute['this project']
  rows = [('compute limit at the matmul peak', 'examples/sec', [limit], None,
           []),
          ('train step alone, this LRN', 'examples/sec', [this_lrn],
           ' of the limit', [this_lrn / limit]),
          ('train step alone, tf.nn.lrn', 'examples/sec',
           [compute['tf.nn.lrn']], 'x slower',
           [this_lrn / compute['tf.nn.lrn']])]
  pipeline = figures['pipeline']
  chosen = [row for row in pipeline if row['name'] == 'batched' and
            row['threads'] ==
            benchmark_speed.cifar10_input.NUM_PREPROCESS_THREADS][0]
  for row in [pipeline[0], chosen] + [
      row for row in pipeline
      if row['name'] == benchmark_speed.TENSORFLOW_OP_DISTORTIONS]:
    rows.append(('input pipeline alone, %s, %d threads' % (
        row['name'], row['threads']), 'images/sec', [row['pipeline']], '%',
                 [100 * this_lrn / row['pipeline']]))
  rows.append(('training fed by the batched pipeline / by the per-image one',
               'examples/sec', [chosen['training'], pipeline[0]['training']],
               'x', [chosen['training'] / pipeline[0]['training']]))
  alone = loops['train step alone, float32']
  rows.append(('cifar10_train.py loop', 'examples/sec', [ours], '%',
               [100 * abs(1 - ours / alone), alone]))
  bf16 = compute.get('mixed_bfloat16')
  if bf16:
    rows.append(('train step alone, mixed_bfloat16 (%s)' %
                 figures['bfloat16_lrn'], 'examples/sec', [bf16], 'x float32',
                 [bf16 / this_lrn]))
  for name, reference in (('mixed_bfloat16, LRN as float32 ops', bf16),
                          ('mixed_bfloat16, LRN as bfloat16 ops', bf16),
                          ('float32, LRN as TensorFlow ops', this_lrn),
                          ('float32, LRN in XLA', this_lrn),
                          ('mixed_bfloat16, LRN in XLA', bf16)):
    if name in compute:
      rows.append(('train step alone, ' + name, 'examples/sec',
                   [compute[name]], 'x', [compute[name] / reference]))
  bf16_loop = loops.get('cifar10_train.py --precision=mixed_bfloat16')
  for name, rate in loops.items():
    if name == 'cifar10_train.py --precision=mixed_bfloat16':
      bf16_alone = loops['train step alone, mixed_bfloat16']
      ratios = [rate / ours, rate / loops['Keras model.fit, mixed_bfloat16'],
                100 * abs(1 - rate / bf16_alone), bf16_alone]
    elif name in benchmark_speed.KERNEL_OFF_LOOPS:
      ratios = [loops[benchmark_speed.KERNEL_OFF_LOOPS[name][1]] / rate]
    elif name == 'Keras model.fit, mixed_bfloat16':
      ratios = [bf16_loop / rate]
    elif name != 'cifar10_train.py' and not name.startswith('train step'):
      ratios = [ours / rate]
    else:
      continue
    rows.append((name, 'examples/sec', [rate], 'x', ratios))
  for kind, label in (('plain', 'cifar10_eval.py --run_once'),
                      ('flip', 'cifar10_eval.py --run_once --eval_flip')):
    run = figures['eval'][kind]
    rows.append(('%s, %d images' % (label, run['images']), 's',
                 [run['images'], run['seconds'], run['command_seconds']],
                 None, []))
  if 'memory' in figures:
    mem = figures['memory']
    rows.append(('resident memory, minute 2 -> %.0f' % mem['minutes'], 'MiB',
                 [mem['rss_at_2_min'], mem['rss_at_end'], mem['peak_rss']],
                 '%', [100 * mem['growth']]))
  return rows


def _check_table(benchmark_speed, out, figures, limit):
  """The table in out has every expected row once, in order and nothing
  else; each figure in its unit, each ratio agreeing with the figures."""
  table = _table(out, '| measured (batch 128) | figure | ratio |')
  expected = _expected_table(benchmark_speed, figures, limit)
  assert [row[0] for row in table] == [row[0] for row in expected]
  for (label, figure, ratio), (_, unit, values, after, ratios) in zip(
      table, expected):
    assert unit in figure.split(), (label, figure)
    # An eval row's label holds its image count, printed with its figures.
    assert _agrees(label + ' ' + figure if unit == 's' else figure,
                   values), (label, figure, values)
    assert _agrees(ratio, ratios), (label, ratio, ratios)
    if after is None:
      assert ratio == '', (label, ratio)
    else:
      assert re.search(NUMBER + re.escape(after), ratio), (label, ratio)
  return dict((row[0], row) for row in table)


def test_benchmark_table_states_each_figure_and_ratio(benchmark_speed,
                                                      capsys):
  figures = _canned_figures()
  benchmark_speed.print_table(figures, limit=2000.0)
  out = capsys.readouterr().out
  table = _check_table(benchmark_speed, out, figures, 2000.0)
  assert 'below' in table['cifar10_train.py loop'][2]
  # Noise can put a loop ahead of its step alone; the table says so.
  figures['loops']['cifar10_train.py'] = 1020.0
  benchmark_speed.print_table(figures, limit=2000.0)
  table = _check_table(benchmark_speed, capsys.readouterr().out, figures,
                       2000.0)
  assert 'above' in table['cifar10_train.py loop'][2]
  # Without bfloat16 units the table says what that means.
  assert 'bfloat16 units: none' in out


TARGETS_HEADER = '| target | per round | median | met | median meets it |'


def _check_targets(benchmark_speed, out, targets, bfloat16_units=True):
  """The targets' table in out: one row per target in order, each round's
  ratio, their median, the rounds that met it and the median's verdict."""
  rows = _table(out, TARGETS_HEADER)
  assert [row[0] for row in rows] == list(targets)
  known = {t.name: t for t in benchmark_speed.TARGETS +
           (benchmark_speed.LIMIT_FRACTION,)}
  for name, per_round, median, met, verdict in rows:
    ratios, target = targets[name], known[name]
    assert _agrees(per_round, ratios), (name, per_round)
    assert _agrees(median, [statistics.median(ratios)]), (name, median)
    if target.least is None:
      assert (met, verdict) == ('', ''), name
      continue
    assert met == '%d of %d rounds' % (
        sum(r >= target.least for r in ratios), len(ratios)), name
    if target.needs_bfloat16_units and not bfloat16_units:
      assert verdict.startswith('not judged'), name
    else:
      assert verdict == ('yes' if statistics.median(ratios) >= target.least
                         else 'no'), name
  return {row[0]: row for row in rows}


def test_benchmark_pairs_each_target_within_a_round(benchmark_speed, capsys):
  # Round 2 is a slow minute for everything: a pair within it still compares.
  rounds = {'train step alone, float32': [1000.0, 500.0],
            'cifar10_train.py': [960.0, 470.0],
            'Keras model.fit': [600.0, 350.0],
            'train step alone, mixed_bfloat16': [2000.0, 1000.0],
            'cifar10_train.py --precision=mixed_bfloat16': [1960.0, 900.0],
            'Keras model.fit, mixed_bfloat16': [1200.0, 560.0]}
  targets = benchmark_speed.paired_ratios(rounds, limit=2000.0)
  assert targets['mixed_bfloat16 loop / its step alone >= 0.95'] == [
      pytest.approx(0.98), pytest.approx(0.9)]
  assert targets['float32 loop / Keras float32 (no target)'] == [
      pytest.approx(1.6), pytest.approx(470 / 350)]
  # The float32 loop's fraction of the compute limit, round by round.
  assert targets['float32 loop / float32 compute limit (no target)'] == [
      pytest.approx(0.48), pytest.approx(0.235)]
  benchmark_speed.print_targets(targets, [0.5, None])
  out = capsys.readouterr().out
  assert 'host steal per round: 0.5%, ?' in out.splitlines()[1]
  rows = _check_targets(benchmark_speed, out, targets)
  # Met in one round of two, yet not in its median.
  assert rows['mixed_bfloat16 loop / its step alone >= 0.95'][3:] == [
      '1 of 2 rounds', 'no']
  assert rows['mixed_bfloat16 loop / Keras mixed_bfloat16 >= 1.5'][4] == 'yes'
  medians = benchmark_speed.target_medians(targets)
  assert medians['mixed_bfloat16 loop / float32 loop >= 1.6'] == dict(
      median=pytest.approx((1960 / 960 + 900 / 470) / 2), least=1.6, met=True)
  assert medians['float32 loop / float32 compute limit (no target)'][
      'met'] is None
  # Emulated bfloat16: its speed-ups over float32 and Keras are not judged,
  # the loop beside its own step still is.
  benchmark_speed.print_targets(targets, [0.5, None], bfloat16_units=False)
  rows = _check_targets(benchmark_speed, capsys.readouterr().out, targets,
                        bfloat16_units=False)
  assert rows['mixed_bfloat16 loop / its step alone >= 0.95'][4] == 'no'
  # A loop left out (no Keras installed, say) leaves its targets out, and
  # without a limit there is no fraction of it.
  del rounds['Keras model.fit']
  targets = benchmark_speed.paired_ratios(rounds)
  assert 'float32 loop / Keras float32 (no target)' not in targets
  assert 'float32 loop / float32 compute limit (no target)' not in targets


def test_steal_share_comes_from_the_hypervisor_counter(benchmark_speed):
  bench_common = benchmark_speed.bench_common
  before = [100, 0, 100, 700, 0, 0, 0, 100]
  after = [150, 0, 150, 800, 0, 0, 0, 150]  # 50 of 250 ticks stolen.
  assert bench_common.steal_percent(before, after) == pytest.approx(20.0)
  assert bench_common.steal_percent(None, after) is None
  now = bench_common.cpu_times()
  if os.path.exists('/proc/stat'):
    assert len(now) >= 8 and all(t >= 0 for t in now)


def test_benchmark_names_the_bfloat16_units_it_finds(benchmark_speed):
  assert benchmark_speed.bf16_note(
      dict(vector='avx2 avx512f avx512_bf16')) == 'bfloat16 units: avx512_bf16.'


def test_benchmark_compute_only_measures_and_profiles_each_variant(
    benchmark_speed, data_dir):
  rates, profiles = benchmark_speed.compute_only(
      data_dir, steps=2, rounds=1, batch_size=8, profile_steps=1)
  assert set(rates) == {'this project', 'tf.nn.lrn', 'mixed_bfloat16',
                        'mixed_bfloat16, LRN as float32 ops',
                        'mixed_bfloat16, LRN as bfloat16 ops',
                        'float32, LRN in XLA', 'mixed_bfloat16, LRN in XLA'
                       } | ({'float32, LRN as TensorFlow ops'}
                            if benchmark_speed.fused_lrn_reason(
                                benchmark_speed.tf.float32) is None
                            else set())
  assert all(rate > 0 for rate in rates.values())
  assert set(profiles) == {'float32', 'mixed_bfloat16'}
  for name in profiles:
    shares = dict(profiles[name])
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares['convolutions (with bias, ReLU)'] > 0
    assert shares['LRN and its gradient'] > 0


def test_benchmark_profile_counts_the_casts_around_the_lrn_as_the_lrn(
    benchmark_speed):
  tf = benchmark_speed.tf
  with tf.Graph().as_default() as graph:
    # A bfloat16 network whose LRN is float32 ops between casts.
    benchmark_speed._train_graph(
        tf.zeros([2, 24, 24, 3]), tf.zeros([2], tf.int32), 'mixed_bfloat16',
        batch_size=2, lrn=(benchmark_speed.lrn_ops.band_lrn, tf.float32))
  casts = benchmark_speed._lrn_casts(graph)
  # Into and out of norm1 and norm2.
  assert len(casts) == 4
  category = benchmark_speed._category
  for cast in casts:
    assert category(cast, casts) == benchmark_speed.LRN_KIND
    assert category('gradients/%s_grad/Cast' % cast,
                    casts) == benchmark_speed.LRN_KIND
  assert category('gradients/conv1/Cast_grad/Cast', casts) != (
      benchmark_speed.LRN_KIND)


def test_benchmark_leaves_bfloat16_out_where_asked(benchmark_speed, data_dir):
  rates, profiles = benchmark_speed.compute_only(
      data_dir, steps=1, rounds=1, batch_size=8, profile_steps=1,
      bfloat16=False)
  assert 'this project' in rates and 'tf.nn.lrn' in rates
  assert not [name for name in rates if 'bfloat16' in name]
  assert list(profiles) == ['float32']


def test_benchmark_measures_bfloat16_only_where_the_units_are(
    benchmark_speed):
  with_units = dict(vector='avx2 avx512f avx512_bf16 amx_bf16')
  without = dict(vector='avx2 avx512f')
  assert benchmark_speed.measures_bfloat16('auto', with_units)
  assert not benchmark_speed.measures_bfloat16('auto', without)
  assert benchmark_speed.measures_bfloat16('on', without)
  assert not benchmark_speed.measures_bfloat16('off', with_units)


def test_benchmark_table_without_bfloat16_rows(benchmark_speed, capsys):
  figures = _canned_figures()
  for part in ('compute_only', 'loops'):
    figures[part] = {name: rate for name, rate in figures[part].items()
                     if 'bfloat16' not in name}
  del figures['bfloat16_lrn']
  benchmark_speed.print_table(figures, limit=2000.0)
  out = capsys.readouterr().out
  table = _check_table(benchmark_speed, out, figures, 2000.0)
  assert {'Keras model.fit', 'train step alone, float32, LRN as TensorFlow ops',
          'cifar10_train.py, LRN kernel off'} <= set(table)
  assert 'mixed_bfloat16 |' not in out and 'mixed_bfloat16 (' not in out


def test_benchmark_takes_the_loop_apart_into_its_parts(benchmark_speed,
                                                       data_dir, tmp_path,
                                                       capsys):
  parts = benchmark_speed.loop_taken_apart(
      data_dir, str(tmp_path), 'float32', rounds=1, windows=1, window_steps=2,
      warmup_steps=1)
  assert list(parts) == list(benchmark_speed.LOOP_PARTS)
  assert all(f['rate'] > 0 and f['cpu_us'] > 0 and f['rate_all_steps'] > 0
             for f in parts.values())
  # The last part ran in the trainer's own session: it wrote summaries.
  assert any(name.startswith('events.out.tfevents') for name in
             os.listdir(str(tmp_path / 'taken_apart')))
  capsys.readouterr()
  benchmark_speed.print_loop_parts({'float32': parts})
  out = capsys.readouterr().out.splitlines()
  assert out[0].startswith('   float32, the step alone, on a constant batch: ')
  assert re.match(r"   float32, the queue and the loop's session, hooks and "
                  r'summaries: \d+ examples/sec, \d+ CPU us an example; '
                  r'[\d.]+% (below|above) the step alone, CPU time '
                  r'[+-][\d.]+%; all steps, summary steps included: \d+ '
                  r'examples/sec, [\d.]+% (below|above) the step alone$',
                  out[3])


def test_benchmark_without_data_says_where_to_point_it(benchmark_speed,
                                                       tmp_path, capsys):
  assert benchmark_speed.main(['--data_dir', str(tmp_path)]) == 2
  out = capsys.readouterr().out
  assert 'No CIFAR-10 data at' in out and '--data_dir' in out


@pytest.mark.slow
def test_benchmark_prints_every_part_and_the_ratios(benchmark_speed, data_dir,
                                                    tmp_path):
  """The whole benchmark end to end, as a user runs it (a few minutes)."""
  output = tmp_path / 'figures.json'
  result = run_script([os.path.join('scripts', 'benchmark_speed.py'),
                       '--data_dir', data_dir, '--steps', '10', '--rounds', '1',
                       '--eval_repeats', '1', '--memory_minutes', '0.25',
                       '--bfloat16', 'on', '--output', str(output)],
                      timeout=900)
  assert result.returncode == 0, result.stdout + result.stderr
  out = result.stdout
  for part in ('float32 matmul peak', 'Fused kernels (cifar10/kernels)',
               '1. Input pipeline alone', '2. Train step alone',
               '3./4. Full training loops', '5. Evaluation', '6. Memory'):
    assert part in out
  assert re.search(r'^bfloat16 units: ', out, re.M)
  figures = json.loads(output.read_text())
  assert len(figures['loop_rounds']['cifar10_train.py']) == 1
  assert len(figures['steal_percent']) == 1
  assert set(figures['loop_taken_apart']) == {'float32', 'mixed_bfloat16'}
  assert set(figures['eval']) == {'plain', 'flip'}
  assert figures['compute_only']['mixed_bfloat16'] > 0
  assert [row['threads'] for row in figures['pipeline']] == [16, 1, 2, 4, 2]
  # The table: every row once, in order, its ratios those of the figures.
  _check_table(benchmark_speed, out, figures, figures['compute_limit'])
  # The targets: each one's median over the rounds and its verdict, the
  # float32 loop's fraction of the compute limit among them.
  units = bool(benchmark_speed.bf16_units(figures['machine']))
  rows = _check_targets(benchmark_speed, out, figures['targets'], units)
  for name in ('mixed_bfloat16 loop / float32 loop >= 1.6',
               'mixed_bfloat16 loop / Keras mixed_bfloat16 >= 1.5',
               'float32 loop / float32 compute limit (no target)'):
    assert name in rows
  assert figures['targets'][
      'float32 loop / float32 compute limit (no target)'] == [pytest.approx(
          figures['loop_rounds']['cifar10_train.py'][0] /
          figures['compute_limit'])]
  assert set(figures['target_medians']) == set(figures['targets'])
  # The LRN's share of the bfloat16 step, in part 2's profile.
  profile = out.split('Where the time goes, mixed_bfloat16:')[1]
  assert re.match(r'(\n   +[\d.]+%  .+)*\n   +[\d.]+%  LRN and its gradient\n',
                  profile)
  assert dict(figures['profile_mixed_bfloat16'])['LRN and its gradient'] > 0
