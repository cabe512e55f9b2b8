import os
import sys

# The packages are importable from a checkout even before `pip install -e .`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import contextlib  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Fuzz profiles (tests/test_fuzz_*.py). 'default' keeps the suite within
# minutes and reproducible: derandomized, no example database, so CI sees the
# same examples on every run. 'long' is the soak run behind the README's
# reliability figures:
#   python -m pytest tests/test_fuzz_*.py --hypothesis-profile=long \
#       --hypothesis-show-statistics
# TensorFlow-backed properties run a third of max_examples, at least 20
# (each example runs a graph). FUZZ_LONG_EXAMPLES sets the long profile's
# count.
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


def _run_in_process(module_name, args=(), program=None):
  """Runs a command's run() in this process as `program ARGS` would.

  Returns a subprocess.CompletedProcess (returncode, stdout, stderr as text)
  without TensorFlow's seconds of start-up. The flags the command defines
  are removed again afterwards, so the next command can define its own.
  """
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  # absl's own --help flags, defined once per process: not the command's.
  app.define_help_flags()
  module = importlib.import_module(module_name)
  program = program or module_name.rsplit('.', 1)[-1]
  argv = [program] + list(args)
  flag_values = flags.FLAGS
  before = {name: flag_values[name] for name in flag_values}
  stdout, stderr = io.StringIO(), io.StringIO()
  saved_argv, sys.argv = sys.argv, argv
  returncode = 0
  try:
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
      try:
        status = module.run()
        returncode = status or 0
      except SystemExit as e:
        if isinstance(e.code, str):
          stderr.write(e.code + '\n')
          returncode = 1
        else:
          returncode = e.code or 0
  finally:
    sys.argv = saved_argv
    defined = [(name, flag_values[name].default is not None)
               for name in flag_values if before.get(name) is not flag_values[name]]
    for name in list(flag_values):
      if before.get(name) is not flag_values[name]:
        delattr(flag_values, name)
        if name in before:  # A flag the command took over (allow_override).
          flag_values[name] = before[name]
    flag_values.unparse_flags()
  result = subprocess.CompletedProcess(argv, returncode, stdout.getvalue(),
                                       stderr.getvalue())
  # (name, has a default) of each flag the command defined or took over.
  result.flags_defined = sorted(defined)
  return result


@pytest.fixture
def run_in_process():
  """_run_in_process: a command run in the test's process (flags, errors)."""
  return _run_in_process
