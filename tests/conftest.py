import os
import sys

# The packages are importable from a checkout even before `pip install -e .`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # noqa: E402


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
