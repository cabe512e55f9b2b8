"""Every command's start-up, as users meet it: --help and bad flag values."""
import concurrent.futures
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from cifar_fixtures import REPO_ROOT
from cifar_fixtures import run_script

DISTRIBUTION = 'tf-classic-tutorials'

# For each module, the flags its define_flags() adds (or takes over from
# absl), computed in one process: each module's flags are removed again
# before the next module defines its own.
_LIST_FLAGS = r'''
import importlib, json, sys
from absl import flags
FLAGS = flags.FLAGS
found = {}
for module_name in sys.argv[1:]:
  module = importlib.import_module(module_name)
  before = {name: FLAGS[name] for name in FLAGS}
  module.define_flags()
  added = sorted(name for name in FLAGS if before.get(name) is not FLAGS[name])
  # absl's --help shows no default for a flag whose default is None.
  found[module_name] = [(name, FLAGS[name].default is not None)
                        for name in added]
  for name in added:
    if name not in before:
      delattr(FLAGS, name)
print(json.dumps(found))
'''


def console_scripts():
  """(name, module) of every console script setup.py declares."""
  entry_points = importlib.metadata.distribution(DISTRIBUTION).entry_points
  return sorted((ep.name, ep.value.split(':')[0]) for ep in entry_points
                if ep.group == 'console_scripts')


def _help_of(name):
  executable = shutil.which(name)
  assert executable, 'console script %s missing: run pip install -e .' % name
  return subprocess.run([executable, '--help'], capture_output=True,
                        text=True, timeout=120,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))


def test_help_of_every_console_script_lists_every_flag_it_takes():
  scripts = console_scripts()
  assert len(scripts) >= 12
  listed = subprocess.run(
      [sys.executable, '-c', _LIST_FLAGS] + [module for _, module in scripts],
      capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
  assert listed.returncode == 0, listed.stderr
  flags_of = json.loads(listed.stdout.strip().splitlines()[-1])
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    helps = dict(zip(scripts, pool.map(_help_of, [n for n, _ in scripts])))
  for (name, module), result in helps.items():
    assert result.returncode == 0, (name, result.stderr)
    shown = set(re.findall(r'^  --(?:\[no\])?(\w+):', result.stdout, re.M))
    expected = set(name for name, _ in flags_of[module])
    with_defaults = sum(has_default for _, has_default in flags_of[module])
    assert expected, '%s defines no flags?' % module
    assert expected <= shown, '%s --help lacks %s' % (
        name, sorted(expected - shown))
    # Each flag with its default, unless it has none.
    assert result.stdout.count('(default:') >= with_defaults, name


@pytest.mark.parametrize('script,flag,message', [
    ('cifar10/cifar10_train.py', '--batch_size=0',
     'flag --batch_size=0: 0 is not a positive integer'),
    ('cifar10/cifar10_train.py', '--max_steps=-1',
     'flag --max_steps=-1: -1 is not a non-negative integer'),
    ('cifar10/cifar10_train.py', '--fast_epochs=0',
     'flag --fast_epochs=0.0: --fast_epochs must be more than 0.'),
    ('cifar10/cifar10_multi_gpu_train.py', '--num_gpus=0',
     'flag --num_gpus=0: 0 is not a positive integer'),
    ('cifar10/cifar10_eval.py', '--num_examples=0',
     'flag --num_examples=0: 0 is not a positive integer'),
    ('cifar10/cifar10_eval.py', '--data_dir=%s' % os.path.abspath(__file__),
     '--data_dir must be a folder, but that path is a file.'),
    ('mnist_cnn/mnist_deep.py', '--keep_prob=0',
     '--keep_prob must be more than 0 and at most 1.'),
    ('image_retraining/retrain.py', '--testing_percentage=120',
     'flag --testing_percentage=120: 120 is not an integer in the range '
     '[0, 100]'),
])
def test_a_bad_flag_value_is_one_line_naming_the_flag(script, flag, message):
  result = run_script([script, flag])
  program = os.path.basename(script)[:-3]
  assert result.returncode == 2, result.stderr
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('%s: error: ' % program), last
  assert message in last
  assert flag.split('=')[0] in last


def test_an_unknown_flag_is_one_line_too():
  result = run_script(['cifar10/cifar10_eval.py', '--num_gpus=2'])
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
      "cifar10_eval: error: Unknown command line flag 'num_gpus'")
