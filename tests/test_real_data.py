"""Slow checks on the real CIFAR-10 data in ../shared/datasets (pytest -m slow)."""
import os
import re

import pytest

from cifar_fixtures import REPO_ROOT, run_script
from cifar10 import cifar10_input

DATA_DIR = os.path.join(REPO_ROOT, '..', 'shared', 'datasets', 'cifar10')

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.isdir(os.path.join(DATA_DIR, cifar10_input.BATCHES_DIR)),
        reason='real CIFAR-10 data not found at %s' % DATA_DIR),
]


def test_real_data_files_pass_the_checks():
  assert cifar10_input.check_data_files(
      cifar10_input.data_files(DATA_DIR)) == 50000
  assert cifar10_input.check_data_files(
      cifar10_input.data_files(DATA_DIR, eval_data=True)) == 10000


def test_five_minutes_of_training_beats_chance_by_far(tmp_path):
  """The reference curve reaches ~0.59 after 5 minutes on 2 cores."""
  result = run_script([os.path.join('scripts', 'cifar10_real_data.py'),
                       '--data_dir', DATA_DIR, '--minutes', '5',
                       '--checkpoint_minutes', '5',
                       '--work_dir', str(tmp_path)], timeout=900)
  assert result.returncode == 0, result.stdout + result.stderr
  # Rows: | step | minutes | epochs | precision @ 1 | ...
  precisions = [float(p) for p in re.findall(
      r'\| \d+ \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|', result.stdout)]
  assert precisions[0] < 0.2      # the step-0 checkpoint: chance
  assert precisions[-1] > 0.45    # well above chance after 5 minutes
