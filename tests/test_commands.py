"""Every command's start-up, as users meet it: --help and bad flag values.

The commands run in this process (no TensorFlow start-up per case); one real
console script proves that the installed start-up behaves the same.
"""
import importlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

from cli_support import launch
from tutorials_common import console
import suite_helpers

DISTRIBUTION = 'tf-classic-tutorials'


def console_scripts():
  """(name, command module) of every console script setup.py declares."""
  entry_points = importlib.metadata.distribution(DISTRIBUTION).entry_points
  scripts = [ep for ep in entry_points if ep.group == 'console_scripts']
  # Each starts its command through the launcher, under its own name.
  assert all(ep.value == 'cli_support.launch:' + ep.name for ep in scripts)
  assert sorted(ep.name for ep in scripts) == sorted(launch.COMMANDS)
  return sorted(launch.COMMANDS.items())


def installed_script(name):
  """The path of an installed console script, in this interpreter's
  environment first (a virtual environment need not be on PATH)."""
  folders = [sysconfig.get_path('scripts'), os.path.dirname(sys.executable),
             os.environ.get('PATH', '')]
  return shutil.which(name, path=os.pathsep.join(folders))


def _flags_shown(help_text):
  return set(re.findall(r'^  --(?:\[no\])?(\w+):', help_text, re.M))


def _assert_help_lists_flags(name, result, flags_defined):
  assert result.returncode == 0, (name, result.stderr)
  expected = set(flag for flag, _ in flags_defined)
  assert expected, '%s defines no flags?' % name
  missing = expected - _flags_shown(result.stdout)
  assert not missing, '%s --help lacks %s' % (name, sorted(missing))
  # Each flag with its default, unless it has none (absl shows no default
  # for a flag whose default is None).
  with_defaults = sum(has_default for _, has_default in flags_defined)
  assert result.stdout.count('(default:') >= with_defaults, name


def test_help_of_every_command_lists_every_flag_it_takes(run_in_process):
  scripts = console_scripts()
  assert len(scripts) >= 12
  for name, module in scripts:
    result = run_in_process(module, ['--help'], program=name)
    _assert_help_lists_flags(name, result, result.flags_defined)
    # A usage line to copy, then what the command does.
    usage, summary = result.stdout.split('\n\n')[:2]
    assert re.match(r'USAGE: %s \[flags\]' % name, usage), usage
    if name == 'cifar10_predict':  # Its positional arguments too.
      assert usage.endswith('[flags] IMAGE_OR_FOLDER [IMAGE_OR_FOLDER ...]')
    doc = importlib.import_module(module).__doc__
    assert summary == doc.strip().split('\n\n')[0], name


def test_installed_console_script_help(run_in_process, tmp_path):
  executable = installed_script('cifar10_train')
  assert executable, 'console script cifar10_train missing: pip install -e .'
  # The console shows the command's own lines only (TF_CPP_MIN_LOG_LEVEL
  # unset, as a user has it), run from a folder outside the checkout: the
  # installed package, not the current folder, provides the modules.
  env = dict(os.environ)
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)
  env.pop('PYTHONPATH', None)
  result = subprocess.run([executable, '--help'], capture_output=True,
                          text=True, timeout=120, env=env, cwd=str(tmp_path))
  assert not re.search(r'^[IWEF]\d{4} |deprecat', result.stdout + result.stderr,
                       re.M | re.I), result.stderr
  # The program's name, not the path of the script pip wrote.
  assert result.stdout.startswith('USAGE: cifar10_train [flags]\n')
  in_process = run_in_process('cifar10.cifar10_train', ['--help'])
  _assert_help_lists_flags('cifar10_train', result, in_process.flags_defined)
  assert _flags_shown(result.stdout) == _flags_shown(in_process.stdout)


# What a command's start-up block does when it loads TensorFlow, in a fresh
# interpreter (this one has loaded TensorFlow long ago).
_START_UP_PROGRAM = r'''
import json, os, sys
from tutorials_common import console
console.quiet_tensorflow()
keras_loaded = 'keras' in sys.modules
variable_left = 'TF_USE_LEGACY_KERAS' in os.environ
import tensorflow as tf
print(json.dumps([keras_loaded, variable_left,
                  type(tf.keras.layers.Dense(2)).__module__]))
'''


def test_a_command_loads_tensorflow_without_keras_and_tf_keras_still_works():
  keras_loaded, variable_left, dense_module = (
      suite_helpers.fresh_interpreter_json(_START_UP_PROGRAM,
                                           unset=['TF_USE_LEGACY_KERAS']))
  assert not keras_loaded and not variable_left
  assert dense_module.startswith('keras.')  # Keras 3, loaded on first use.


@pytest.mark.parametrize('module,flag,message', [
    ('cifar10.cifar10_train', '--batch_size=0',
     'flag --batch_size=0: 0 is not a positive integer'),
    ('cifar10.cifar10_train', '--max_steps=-1',
     'flag --max_steps=-1: -1 is not a non-negative integer'),
    ('cifar10.cifar10_train', '--fast_epochs=0',
     'flag --fast_epochs=0.0: --fast_epochs must be more than 0.'),
    ('cifar10.cifar10_multi_gpu_train', '--num_gpus=0',
     'flag --num_gpus=0: 0 is not a positive integer'),
    ('cifar10.cifar10_eval', '--num_examples=0',
     'flag --num_examples=0: 0 is not a positive integer'),
    ('cifar10.cifar10_eval', '--data_dir=%s' % os.path.abspath(__file__),
     '--data_dir must be a folder, but that path is a file.'),
    ('mnist_cnn.mnist_deep', '--keep_prob=0',
     '--keep_prob must be more than 0 and at most 1.'),
    ('image_retraining.retrain', '--testing_percentage=120',
     'flag --testing_percentage=120: 120 is not an integer in the range '
     '[0, 100]'),
])
def test_a_bad_flag_value_is_one_line_naming_the_flag(run_in_process, module,
                                                      flag, message):
  result = run_in_process(module, [flag])
  program = module.rsplit('.', 1)[-1]
  assert result.returncode == 2, result.stderr
  assert 'Traceback' not in result.stderr
  assert result.stderr.count('\n') == 1, result.stderr
  line = result.stderr.strip()
  assert line.startswith('%s: error: ' % program), line
  assert message in line
  assert flag.split('=')[0] in line


def test_an_unknown_flag_is_one_line_too(run_in_process):
  result = run_in_process('cifar10.cifar10_eval', ['--num_gpus=2'])
  assert result.returncode == 2
  assert result.stderr == (
      "cifar10_eval: error: Unknown command line flag 'num_gpus'\n")


# Lines TensorFlow 2.21 printed on the console of a 2-core AMD EPYC with
# AVX-512 and AVX512_BF16 (cifar10_train on tiny data, TF_CPP_MIN_LOG_LEVEL
# unset), and lines that are not its notices.
TENSORFLOW_NOTICES = [
    'WARNING: All log messages before absl::InitializeLog() is called are '
    'written to STDERR',
    'I0000 00:00:1796186427.478869   18213 port.cc:153] oneDNN custom '
    'operations are on. You may see slightly different numerical results due '
    'to floating-point round-off errors from different computation orders. To '
    'turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.',
    'I0000 00:00:1796186509.414985   19264 cudart_stub.cc:31] Could not find '
    'cuda drivers on your machine, GPU will not be used.',
    'E0000 00:00:1796186433.220075   18213 cuda_platform.cc:52] failed call '
    'to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR '
    '(303)',
    'E0000 00:00:1796186434.397529   18325 util.cc:131] oneDNN supports '
    'DT_UINT8 only on platforms with AVX-512. Falling back to the default '
    'Eigen-based implementation if present.',
    'I0000 00:00:1796186509.485836   19264 cpu_feature_guard.cc:227] This '
    'TensorFlow binary is optimized to use available CPU instructions in '
    'performance-critical operations.',
    'To enable the following instructions: AVX2 AVX512F AVX512_VNNI '
    'AVX512_BF16 FMA, in other operations, rebuild TensorFlow with the '
    'appropriate compiler flags.',
]
REAL_LINES = [
    'W0000 00:00:1796186433.220075   18213 cpu_allocator_impl.cc:83] '
    'Allocation of 1610612736 exceeds 10% of free system memory.',
    'E0000 00:00:1796186433.220075   18213 checkpoint_reader.cc:42] Data loss: '
    'not an sstable (bad magic number)',
    'cifar10_train: error: Missing CIFAR-10 file /tmp/x (the file does not '
    'exist).',
    '2026-12-02 04:41:38.258872: step 10, loss = 3.77 (120.0 examples/sec; '
    '0.133 sec/batch)',
]


@pytest.mark.parametrize('line', TENSORFLOW_NOTICES)
def test_tensorflow_notices_are_kept_off_the_console(line):
  assert console.is_tensorflow_notice(line)


@pytest.mark.parametrize('line', REAL_LINES)
def test_real_warnings_and_the_commands_lines_stay(line):
  assert not console.is_tensorflow_notice(line)


# A fresh interpreter with the core install only (every package of the
# extras unimportable) quiets TensorFlow with the one explicit call, imports
# every command module in sorted order and runs its --help, then runs an op
# in a session (where TensorFlow looks for a GPU): what reaches fd 2 is what
# a user's console would show.
_CORE_ONLY_PROGRAM = r'''
import contextlib, importlib, importlib.abc, io, json, sys
EXTRAS = {'matplotlib', 'PIL', 'IPython', 'ipykernel', 'ipywidgets',
          'anywidget', 'jupyterlab', 'notebook', 'nbclient', 'nbformat',
          'selenium', 'hypothesis', 'pytest', 'tensorflow_hub', 'torch'}
class Uninstalled(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in EXTRAS:
      raise ModuleNotFoundError('No module named %r' % name)
sys.meta_path.insert(0, Uninstalled())
from absl import flags
from cli_support import launch
from tutorials_common import console
console.quiet_tensorflow()
statuses = {}
for name, module in sorted(launch.COMMANDS.items(), key=lambda c: c[1]):
  before = set(flags.FLAGS)
  sys.argv = [name, '--help']
  with contextlib.redirect_stdout(io.StringIO()):
    try:
      importlib.import_module(module).run()
    except SystemExit as e:
      statuses[name] = e.code
  for flag in set(flags.FLAGS) - before:  # The next command defines its own.
    delattr(flags.FLAGS, flag)
  flags.FLAGS.unparse_flags()
import tensorflow.compat.v1 as tf
with tf.Graph().as_default(), tf.Session() as session:
  session.run(tf.constant(1) + 1)
print(json.dumps(statuses))
'''
_VERBOSE_PROGRAM = r'''
from tutorials_common import console
console.quiet_tensorflow()
import tensorflow.compat.v1 as tf
with tf.Graph().as_default(), tf.Session() as session:
  session.run(tf.constant(1) + 1)
print('{}')
'''


def _fresh_interpreter(program, **env):
  full_env = dict(os.environ)
  full_env.pop('TF_CPP_MIN_LOG_LEVEL', None)
  full_env.update(env)
  result = subprocess.run([sys.executable, '-c', program],
                          capture_output=True, text=True, timeout=180,
                          env=full_env, cwd=suite_helpers.REPO_ROOT)
  assert result.returncode == 0, result.stderr
  notices = [line for line in result.stderr.splitlines()
             if console.is_tensorflow_notice(line)]
  return json.loads(result.stdout.splitlines()[-1]), notices, result.stderr


def test_commands_start_in_any_import_order_quietly_with_the_core_install():
  statuses, notices, stderr = _fresh_interpreter(_CORE_ONLY_PROGRAM)
  assert statuses == {name: 0 for name in launch.COMMANDS}
  assert not notices and 'deprecat' not in stderr.lower(), stderr


def test_tf_cpp_min_log_level_0_still_shows_tensorflows_notices():
  _, notices, stderr = _fresh_interpreter(_VERBOSE_PROGRAM,
                                          TF_CPP_MIN_LOG_LEVEL='0')
  assert notices, stderr
