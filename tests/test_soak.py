"""scripts/soak_kill.py: training killed with SIGKILL loses at most a
checkpoint interval and never leaves a checkpoint evaluation cannot read.

Three kills on tiny data here (marked slow: its five TensorFlow processes
and their start-ups would take a large share of the default run's 5-minute
budget; run it with `python -m pytest -m slow tests/test_soak.py`); the README's figure is
the 50-kill run on the real data.
"""
import json
import os

import pytest

import cifar_fixtures
import suite_helpers
from tutorials_common import checkpoints

SCRIPT = os.path.join(cifar_fixtures.REPO_ROOT, 'scripts', 'soak_kill.py')


def _soak_module():
  return suite_helpers.load_script('soak_kill.py')


@pytest.mark.slow
def test_three_kills_on_tiny_data_lose_nothing(tmp_path):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data',
                                          records_per_file=50)
  figures_path = tmp_path / 'soak.json'
  result = cifar_fixtures.run_script(
      [SCRIPT, '--data_dir', data_dir, '--work_dir', str(tmp_path / 'soak'),
       '--kills', '3', '--max_steps', '300', '--save_checkpoint_secs', '1',
       '--min_life_secs', '0.1', '--max_life_secs', '1.0',
       '--eval_examples', '50', '--beside_examples', '50', '--no_compare', '--json', str(figures_path),
       '--', '--batch_size', '8'], timeout=400)
  assert result.returncode == 0, result.stdout + result.stderr
  assert 'Kills survived: 3 of 3 asked' in result.stdout
  assert 'Checkpoints unreadable after a kill: 0.' in result.stdout
  assert 'Evaluator beside it: kept going' in result.stdout
  figures = json.loads(figures_path.read_text())
  assert figures['kills'] == 3 and figures['trainer_status'] == 0
  assert figures['unreadable_checkpoints'] == 0
  # Every kill was matched with the step the next life resumed from, and
  # none cost more than a checkpoint interval (plus the steps between two
  # log lines, which the log cannot see).
  assert len(figures['steps_lost']) == 3
  assert max(figures['steps_lost']) <= figures['steps_per_checkpoint'] + 10
  assert figures['checkpoints_evaluated'] >= 1
  assert 0.0 <= figures['killed_precision'] <= 1.0
  # The killed run reached its last step, resumed across the kills.
  log = (tmp_path / 'soak' / 'train.log').read_text()
  assert log.count('Resuming from') >= 3
  assert checkpoints.find_checkpoint(str(tmp_path / 'soak' / 'train')).endswith(
      'model.ckpt-300')


def test_the_soak_fails_on_lost_work_or_an_unreadable_checkpoint():
  soak = _soak_module()
  args = soak.parse_args(['--log_frequency', '10'])
  good = dict(unreadable_checkpoints=0, trainer_status=0,
              evaluator_kept_going=True, steps_per_checkpoint=50.0,
              steps_lost=[0, 12, 60])
  assert soak.failures(good, args) == []
  bad = dict(good, unreadable_checkpoints=1, steps_lost=[0, 61, 300],
             evaluator_kept_going=False)
  assert soak.failures(bad, args) == [
      '1 checkpoints unreadable', 'the evaluator stopped',
      '2 kills lost more than a checkpoint interval (61, 300 steps)']
