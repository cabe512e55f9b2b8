"""What a newcomer installs: the README's test command, the lock it uses,
and the lock against setup.py."""
import importlib.metadata
import importlib.util
import os
import re
import subprocess

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cifar_fixtures import REPO_ROOT

DISTRIBUTION = 'tf-classic-tutorials'


def _pins():
  pins = {}
  with open(os.path.join(REPO_ROOT, 'constraints.txt')) as f:
    for line in f:
      match = re.match(r'^([A-Za-z0-9_.-]+)==(\S+)', line)
      if match:
        pins[canonicalize_name(match.group(1))] = match.group(2)
  return pins


def test_the_lock_pins_every_requirement_within_its_range():
  pins = _pins()
  requirements = [Requirement(text) for text in
                  importlib.metadata.requires(DISTRIBUTION)]
  checked = 0
  for requirement in requirements:
    marker = requirement.marker
    extras = ('test', 'notebook', 'docs')
    if marker is not None and not any(marker.evaluate({'extra': e})
                                      for e in extras):
      continue  # Another extra's (charts, hub, torch): not in the test run.
    name = canonicalize_name(requirement.name)
    assert name in pins, (
        '%s is not in constraints.txt: run bash scripts/refresh_constraints.sh'
        % requirement.name)
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        'constraints.txt pins %s==%s outside setup.py\'s %s' % (
            requirement.name, pins[name], requirement.specifier))
    checked += 1
  assert checked >= 15  # The runtime dependencies and both extras.


def test_ci_runs_the_readme_test_command_in_a_fresh_environment():
  # .ci/run's own extraction of the command, as CI runs it.
  script = open(os.path.join(REPO_ROOT, '.ci', 'run')).read()
  extract = re.search(r"test_command=\$\((awk '.*?' README\.md)\)", script,
                      re.S).group(1)
  command = subprocess.run(['bash', '-c', extract], capture_output=True,
                           text=True, cwd=REPO_ROOT, check=True).stdout.strip()
  readme = open(os.path.join(REPO_ROOT, 'README.md')).read()
  assert '```sh\n%s\n```' % command in readme
  assert command.startswith('python3 -m venv .venv && . .venv/bin/activate')
  assert "pip install -c constraints.txt -e '.[test,notebook,docs]'" in command
  assert command.endswith('python -m pytest')
  assert 'bash -euo pipefail -c "$test_command"' in script


def test_the_shell_scripts_run_modules_that_exist():
  # A module renamed in the package must not leave a script calling the old
  # name: scripts/test_newest.sh runs outside the default suite.
  scripts = [os.path.join(REPO_ROOT, '.ci', 'run')] + [
      os.path.join(REPO_ROOT, 'scripts', name)
      for name in sorted(os.listdir(os.path.join(REPO_ROOT, 'scripts')))
      if name.endswith('.sh')]
  readme = open(os.path.join(REPO_ROOT, 'README.md')).read()
  modules = set()
  for text in [open(path).read() for path in scripts] + [readme]:
    modules.update(re.findall(r'python3?"? -m ((?:cifar10|mnist_cnn|'
                              r'image_retraining|cli_support|tutorials_common)'
                              r'[\w.]*)', text))
  assert 'cifar10.kernels' in modules
  for module in sorted(modules):
    assert importlib.util.find_spec(module) is not None, (
        'a script runs python -m %s, which does not exist' % module)
