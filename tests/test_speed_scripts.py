"""The speed benchmark, its Keras and PyTorch references, and the curve plot,
run as a user runs them on small data."""
import os
import re

import pytest

import cifar_fixtures
from cifar_fixtures import run_script

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
  import importlib.util
  spec = importlib.util.spec_from_file_location(
      'cifar10_torch', os.path.join(cifar_fixtures.REPO_ROOT, 'scripts',
                                    'cifar10_torch.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  net = module.Net()
  assert sum(p.numel() for p in net.parameters()) == 1068298
  assert net(torch.zeros(3, 3, 24, 24)).shape == (3, 10)


def test_benchmark_prints_every_part_and_the_ratios(data_dir, tmp_path):
  output = tmp_path / 'figures.json'
  result = run_script([os.path.join('scripts', 'benchmark_speed.py'),
                       '--data_dir', data_dir, '--steps', '10', '--rounds', '1',
                       '--eval_repeats', '1', '--memory_minutes', '0.25',
                       '--output', str(output)], timeout=900)
  assert result.returncode == 0, result.stdout + result.stderr
  out = result.stdout
  for part in ('float32 matmul peak', '1. Input pipeline alone',
               '2. Train step alone', '3./4. Full training loops',
               '5. Evaluation', '6. Memory'):
    assert part in out
  assert re.search(r'\| cifar10_train.py loop \| \d+ examples/sec \|', out)
  assert re.search(r'\| Keras model.fit \| \d+ examples/sec \| '
                   r'cifar10_train.py is [\d.]+x \|', out)
  assert re.search(r'\| input pipeline alone, batched, 2 threads \| \d+ '
                   r'images/sec \| costs [\d.]+% of a compute step \|', out)
  assert re.search(r'resident memory, minute 2 -> \d+ \| \d+ -> \d+ MiB', out)
  assert re.search(r'\d\.\d%  LRN and its gradient', out)
  # The low-precision rows, side by side, and what the CPU has for them.
  assert re.search(r'^bfloat16 units: ', out, re.M)
  assert re.search(r'\| cifar10_train.py --precision=mixed_bfloat16 \| \d+ '
                   r'examples/sec \| [\d.]+x the float32 loop; [\d.]+x Keras '
                   r'mixed_bfloat16 \|', out)
  assert re.search(r'\| Keras model.fit, mixed_bfloat16 \| \d+ examples/sec',
                   out)
  assert re.search(r'\| train step alone, mixed_bfloat16, LRN in bfloat16 \| '
                   r'\d+ examples/sec \| [\d.]+x float32 \|', out)
  assert 'Where the time goes, mixed_bfloat16:' in out
  import json
  figures = json.load(open(str(output)))
  assert set(figures['eval']) == {'plain', 'flip'}
  assert figures['compute_only']['this project'] > 0
  assert figures['compute_only']['mixed_bfloat16'] > 0
  assert figures['profile_mixed_bfloat16']
  assert [row['threads'] for row in figures['pipeline']] == [16, 1, 2, 4]


def test_benchmark_without_data_says_where_to_point_it(tmp_path):
  result = run_script([os.path.join('scripts', 'benchmark_speed.py'),
                       '--data_dir', str(tmp_path)])
  assert result.returncode == 2
  assert 'No CIFAR-10 data at' in result.stdout and '--data_dir' in result.stdout


def test_plot_draws_one_line_per_curve(tmp_path):
  for name, rows in (('a', [(0, 0.1), (5, 0.75), (10, 0.8)]),
                     ('b', [(0, 0.1), (5, 0.78), (12.5, 0.86)])):
    with open(str(tmp_path / (name + '.csv')), 'w') as f:
      f.write('step,minutes,precision\n')
      f.writelines('%d,%s,%s\n' % (i, m, p) for i, (m, p) in enumerate(rows))
  svg_path = tmp_path / 'plot.svg'
  result = run_script([os.path.join('scripts', 'plot_curves.py'), '--output',
                       str(svg_path), 'tutorial=%s' % (tmp_path / 'a.csv'),
                       'fast schedule=%s' % (tmp_path / 'b.csv')])
  assert result.returncode == 0, result.stderr
  svg = svg_path.read_text()
  assert svg.startswith('<svg') and svg.rstrip().endswith('</svg>')
  # One marker per checkpoint, less the step-0 ones (chance, off the scale).
  assert svg.count('<polyline') == 2 and svg.count('<circle') == 4
  assert '>fast schedule<' in svg and '>tutorial<' in svg
  bad = run_script([os.path.join('scripts', 'plot_curves.py'), '--output',
                    str(svg_path), 'no-label-here'])
  assert bad.returncode != 0 and 'is not LABEL=CSV' in bad.stderr
