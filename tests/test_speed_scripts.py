"""The speed benchmark, its Keras and PyTorch references, and the curve plot,
run as a user runs them on small data."""
import json
import os
import re

import pytest

from cifar10 import lrn_kernel
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


def test_benchmark_table_states_each_figure_and_ratio(benchmark_speed,
                                                      capsys):
  benchmark_speed.print_table(_canned_figures(), limit=2000.0)
  out = capsys.readouterr().out
  rows = [
      '| compute limit at the matmul peak | 2000 examples/sec | |',
      '| train step alone, this LRN | 1000 examples/sec | 0.50 of the limit |',
      '| train step alone, tf.nn.lrn | 800 examples/sec | 1.25x slower |',
      "| input pipeline alone, tutorial's per-image queue runners, 16 threads "
      '| 10000 images/sec | costs 10.0% of a compute step |',
      '| input pipeline alone, batched, 2 threads | 50000 images/sec | costs '
      '2.0% of a compute step |',
      '| input pipeline alone, batched, distortions as TensorFlow ops, 2 '
      'threads | 25000 images/sec | costs 4.0% of a compute step |',
      '| training fed by the batched pipeline / by the per-image one | 1000 / '
      '800 examples/sec | 1.25x |',
      '| cifar10_train.py loop | 960 examples/sec | 4.0% below its step alone '
      '(1000 examples/sec beside it) |',
      '| train step alone, mixed_bfloat16 (fused LRN kernel) | 1500 '
      'examples/sec | 1.50x float32 |',
      '| train step alone, mixed_bfloat16, LRN as float32 ops | 1200 '
      'examples/sec | 0.80x mixed_bfloat16 |',
      '| train step alone, mixed_bfloat16, LRN as bfloat16 ops | 1125 '
      'examples/sec | 0.75x mixed_bfloat16 |',
      '| train step alone, float32, LRN as TensorFlow ops | 950 examples/sec '
      '| 0.95x this LRN |',
      '| cifar10_train.py, LRN kernel off | 800 examples/sec | the kernel '
      'makes the loop 1.20x faster |',
      '| train step alone, float32, LRN in XLA | 1100 examples/sec | 1.10x '
      'this LRN |',
      '| train step alone, mixed_bfloat16, LRN in XLA | 1200 examples/sec | '
      '0.80x mixed_bfloat16 |',
      '| cifar10_train.py --precision=mixed_bfloat16 | 1440 examples/sec | '
      '1.50x the float32 loop; 1.50x Keras mixed_bfloat16; 4.0% below its '
      'step alone (1500 examples/sec beside it) |',
      '| cifar10_train.py --precision=mixed_bfloat16, LRN kernel off | 1152 '
      'examples/sec | the kernel makes the loop 1.25x faster |',
      '| cifar10_train.py --precision=mixed_bfloat16, distortions kernel off '
      '| 1200 examples/sec | the distortions kernel makes the loop 1.20x '
      'faster |',
      '| Keras model.fit | 640 examples/sec | cifar10_train.py is 1.50x |',
      '| Keras model.fit, mixed_bfloat16 | 960 examples/sec | '
      'cifar10_train.py mixed_bfloat16 is 1.50x |',
      '| cifar10_eval.py --run_once, 10000 images | 1.50 s (4.0 s with '
      'start-up) | |',
      '| cifar10_eval.py --run_once --eval_flip, 10000 images | 2.50 s (5.0 s '
      'with start-up) | |',
      '| resident memory, minute 2 -> 10 | 1000 -> 1010 MiB (peak 1020) | '
      '+1.0% |',
  ]
  for row in rows:
    assert row in out.splitlines(), row
  # Noise can put a loop ahead of its step alone; the table says so.
  figures = _canned_figures()
  figures['loops']['cifar10_train.py'] = 1020.0
  benchmark_speed.print_table(figures, limit=2000.0)
  assert ('| cifar10_train.py loop | 1020 examples/sec | 2.0% above its step '
          'alone (1000 examples/sec beside it) |'
          in capsys.readouterr().out.splitlines())
  # Without bfloat16 units the table says what that means.
  assert 'bfloat16 units: none' in out


def test_benchmark_pairs_each_target_within_a_round(benchmark_speed, capsys):
  # Round 2 is a slow minute for everything: a pair within it still compares.
  rounds = {'train step alone, float32': [1000.0, 500.0],
            'cifar10_train.py': [960.0, 470.0],
            'Keras model.fit': [600.0, 350.0],
            'train step alone, mixed_bfloat16': [2000.0, 1000.0],
            'cifar10_train.py --precision=mixed_bfloat16': [1960.0, 900.0],
            'Keras model.fit, mixed_bfloat16': [1200.0, 560.0]}
  targets = benchmark_speed.paired_ratios(rounds)
  assert targets['mixed_bfloat16 loop / its step alone >= 0.95'] == [
      pytest.approx(0.98), pytest.approx(0.9)]
  assert targets['float32 loop / Keras float32 >= 1.5'] == [
      pytest.approx(1.6), pytest.approx(470 / 350)]
  benchmark_speed.print_targets(targets, [0.5, None])
  out = capsys.readouterr().out.splitlines()
  assert 'host steal per round: 0.5%, ?' in out[1]
  for row in ('| mixed_bfloat16 loop / its step alone >= 0.95 | 0.98, 0.90 '
              '| 0.94 | 1 of 2 rounds |',
              '| mixed_bfloat16 loop / float32 loop >= 1.6 | 2.04, 1.91 | '
              '1.98 | 2 of 2 rounds |',
              '| mixed_bfloat16 loop / Keras mixed_bfloat16 >= 1.5 | 1.63, '
              '1.61 | 1.62 | 2 of 2 rounds |',
              '| float32 loop / Keras float32 >= 1.5 | 1.60, 1.34 | 1.47 | 1 '
              'of 2 rounds |',
              '| float32 loop / its step alone (no target) | 0.96, 0.94 | 0.95 '
              '|  |'):
    assert row in out, row
  # A loop left out (no Keras installed, say) leaves its targets out.
  del rounds['Keras model.fit']
  assert 'float32 loop / Keras float32 >= 1.5' not in (
      benchmark_speed.paired_ratios(rounds))


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
                            if lrn_kernel.load() else set())
  assert all(rate > 0 for rate in rates.values())
  assert set(profiles) == {'float32', 'mixed_bfloat16'}
  for name in profiles:
    shares = dict(profiles[name])
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares['convolutions (with bias, ReLU)'] > 0
    assert shares['LRN and its gradient'] > 0


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
  assert '| Keras model.fit | 640 examples/sec | cifar10_train.py is 1.50x |' \
      in out
  assert '| train step alone, float32, LRN as TensorFlow ops | 950 ' \
      'examples/sec | 0.95x this LRN |' in out
  assert '| cifar10_train.py, LRN kernel off | 800 examples/sec | the kernel ' \
      'makes the loop 1.20x faster |' in out
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
def test_benchmark_prints_every_part_and_the_ratios(data_dir, tmp_path):
  """The whole benchmark end to end, as a user runs it (a few minutes)."""
  output = tmp_path / 'figures.json'
  result = run_script([os.path.join('scripts', 'benchmark_speed.py'),
                       '--data_dir', data_dir, '--steps', '10', '--rounds', '1',
                       '--eval_repeats', '1', '--memory_minutes', '0.25',
                       '--bfloat16', 'on', '--output', str(output)],
                      timeout=900)
  assert result.returncode == 0, result.stdout + result.stderr
  out = result.stdout
  for part in ('float32 matmul peak', '1. Input pipeline alone',
               '2. Train step alone', '3./4. Full training loops',
               '5. Evaluation', '6. Memory'):
    assert part in out
  assert re.search(r'\| cifar10_train.py loop \| \d+ examples/sec \|', out)
  assert re.search(r'\| Keras model.fit \| \d+ examples/sec \| '
                   r'cifar10_train.py is [\d.]+x \|', out)
  assert re.search(r'resident memory, minute 2 -> \d+ \| \d+ -> \d+ MiB', out)
  assert re.search(r'\| float32 loop / Keras float32 >= 1.5 \| [\d.]+ \| '
                   r'[\d.]+ \| [01] of 1 rounds \|', out)
  figures = json.loads(output.read_text())
  assert len(figures['loop_rounds']['cifar10_train.py']) == 1
  assert len(figures['steal_percent']) == 1
  assert set(figures['loop_taken_apart']) == {'float32', 'mixed_bfloat16'}
  assert re.search(r'\d\.\d%  LRN and its gradient', out)
  assert re.search(r'^bfloat16 units: ', out, re.M)
  figures = json.load(open(str(output)))
  assert set(figures['eval']) == {'plain', 'flip'}
  assert figures['compute_only']['mixed_bfloat16'] > 0
  assert [row['threads'] for row in figures['pipeline']] == [16, 1, 2, 4, 2]
