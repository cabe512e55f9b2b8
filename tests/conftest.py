import os
import sys

# The packages are importable from a checkout even before `pip install -e .`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Fuzz profiles (tests/test_fuzz_*.py). 'default' keeps the suite within
# minutes and reproducible: derandomized, no example database, so CI sees the
# same examples on every run. 'long' is the soak run behind the README's
# reliability figures:
#   python -m pytest tests/test_fuzz_*.py --hypothesis-profile=long \
#       --hypothesis-show-statistics
# TensorFlow-backed properties run a tenth of max_examples (each example
# builds a graph). FUZZ_LONG_EXAMPLES sets the long profile's count.
_FUZZ = dict(database=None, deadline=None, print_blob=True,
             suppress_health_check=[HealthCheck.too_slow,
                                    HealthCheck.data_too_large])
settings.register_profile('default', max_examples=60, derandomize=True,
                          **_FUZZ)
settings.register_profile(
    'long', max_examples=int(os.environ.get('FUZZ_LONG_EXAMPLES', '100000')),
    **_FUZZ)
settings.load_profile('default')


@pytest.fixture(scope='session')
def mnist_trained(tmp_path_factory):
  """MNIST CNN checkpoints trained on synthetic digits by mnist_deep.py."""
  import mnist_fixtures
  from cifar_fixtures import run_script
  root = tmp_path_factory.mktemp('mnist')
  data_dir = mnist_fixtures.write_mnist(root / 'data')
  result = run_script([os.path.join('mnist_cnn', 'mnist_deep.py'),
                       '--data_dir', data_dir, '--steps', '300',
                       '--eval_every', '100', '--checkpoint_every', '200',
                       '--checkpoint_dir', str(root / 'checkpoints'),
                       '--log_dir', str(root / 'logs'), '--run_name', 'first'])
  assert result.returncode == 0, result.stderr
  return dict(root=root, data_dir=data_dir,
              checkpoint_dir=str(root / 'checkpoints'),
              log_dir=str(root / 'logs'), train=result)
