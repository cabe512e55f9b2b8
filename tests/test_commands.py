"""Every command's start-up, as users meet it: --help and bad flag values.

The commands run in this process (no TensorFlow start-up per case); one real
console script proves that the installed start-up behaves the same.
"""
import importlib.metadata
import os
import re
import shutil
import subprocess

import pytest

DISTRIBUTION = 'tf-classic-tutorials'


def console_scripts():
  """(name, module) of every console script setup.py declares."""
  entry_points = importlib.metadata.distribution(DISTRIBUTION).entry_points
  return sorted((ep.name, ep.value.split(':')[0]) for ep in entry_points
                if ep.group == 'console_scripts')


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


def test_installed_console_script_help(run_in_process):
  executable = shutil.which('cifar10_train')
  assert executable, 'console script cifar10_train missing: pip install -e .'
  result = subprocess.run([executable, '--help'], capture_output=True,
                          text=True, timeout=120,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
  in_process = run_in_process('cifar10.cifar10_train', ['--help'])
  _assert_help_lists_flags('cifar10_train', result, in_process.flags_defined)
  assert _flags_shown(result.stdout) == _flags_shown(in_process.stdout)


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
