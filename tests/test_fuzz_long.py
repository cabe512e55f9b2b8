"""scripts/fuzz_long.py, the runner of the long fuzzing, run as a user runs
it on one fast property: a time budget that stops it, a second run that
goes on from the progress file, and the table."""
import json
import os

from cifar_fixtures import run_script

PROPERTY = 'tests/test_fuzz_mnist_idx.py::test_parse_idx_random_bytes'
ROW = '| `test_fuzz_mnist_idx.py::test_parse_idx_random_bytes` | '


def test_fuzz_long_stops_at_its_budget_and_goes_on_to_the_count(tmp_path):
  state_dir = str(tmp_path / 'state')
  command = ['scripts/fuzz_long.py', '--only', 'test_parse_idx_random_bytes',
             '--examples', '30', '--chunk', '20', '--jobs', '1',
             '--state_dir', state_dir]

  # A budget that has run out once the first chunk starts: one chunk only.
  first = run_script(command + ['--minutes', '0.0001'], timeout=120)
  assert first.returncode == 0, first.stdout + first.stderr
  assert 'no progress in %s' % os.path.join(state_dir, 'progress.json') in \
      first.stderr
  assert ROW + '20 | 0 |' in first.stdout
  assert '| to go on |' in first.stdout
  assert '1 properties to go on: run the same command again.' in first.stdout
  with open(os.path.join(state_dir, 'progress.json')) as f:
    assert json.load(f)[PROPERTY]['examples'] == 20

  # The same command again goes on from there to the count, and stops.
  second = run_script(command, timeout=120)
  assert second.returncode == 0, second.stdout + second.stderr
  assert 'no progress' not in second.stderr
  assert '+    10 passed' in second.stdout
  assert ROW + '30 | 0 |' in second.stdout and '| done |' in second.stdout
  with open(os.path.join(state_dir, 'progress.json')) as f:
    entry = json.load(f)[PROPERTY]
  assert (entry['examples'], entry['failed'], entry['chunks']) == (30, 0, 2)
