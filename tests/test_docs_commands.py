"""Every command and Python example of the tutorial pages runs as written.

A small collector of its own: each ```sh or ```python block of the pages in
PAGES must follow a line `<!-- docs-test: ... -->` that says how to run it:

  run             run it in the default suite
  slow            run it only with `-m slow` (it takes long)
  skip=REASON     never run it (a server that runs until stopped, ...)
  needs=NAME      make what it reads first (NEEDS below)
  set:FLAG=VALUE  give each command that has --FLAG this value (a few steps
                  instead of a million; --run_once for the evaluator)
  background      the block starts processes with &: run it with bash

Each block runs in a folder of its own that stands for /tmp/ (every /tmp/ in
the block is rewritten to it), on tiny generated data, with its relative
paths (cat.jpg, digit.png) in a working folder beside it. A block whose lines
are all commands of this project runs them in this process, as
run_in_process does (no TensorFlow start-up per command); any other block
runs with bash, with this environment's python first on the PATH.
"""
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import cifar_fixtures
from cifar_fixtures import REPO_ROOT
import mnist_fixtures
from tutorials_common import images as common_images

PAGES = ['docs/cifar10-tutorial.md', 'docs/using-the-model.md', 'docs/mnist.md',
         'docs/retraining.md', 'docs/notebooks.md', 'docs/index.md',
         'docs/reliability.md']
FENCE = re.compile(r'^```(sh|python)\n(.*?)^```$', re.M | re.S)
ANNOTATION = re.compile(r'<!-- docs-test: (.*?) -->\n$')
GENERATED = re.compile(r'<!-- generated: ([\w.-]+) -->.*?'
                       r'<!-- end generated: \1 -->', re.S)
SCRIPT = re.compile(r'^python ([\w/]+\.py)(?: (.*))?$')
# What each need makes, in the block's /tmp/ folder or its working folder.
NEEDS = ('mnist_data', 'cifar_checkpoint', 'mnist_checkpoint', 'cifar_export',
         'cifar_features', 'pictures', 'image_folders')
MODELS = {'cifar_checkpoint', 'mnist_checkpoint', 'cifar_export',
          'cifar_features'}


class Block(object):

  def __init__(self, page, line, language, text, annotation):
    self.page, self.line, self.language, self.text = page, line, language, text
    annotation = annotation or ''
    # skip=REASON takes the rest of the line; the other words are tokens.
    self.tokens = (['skip'] if annotation.startswith('skip=')
                   else annotation.split())
    self.mode = next((t.split('=')[0] for t in self.tokens
                      if t.split('=')[0] in ('run', 'slow', 'skip')), None)
    self.needs = [t.split('=', 1)[1] for t in self.tokens
                  if t.startswith('needs=')]
    self.settings = dict(t[4:].split('=', 1) for t in self.tokens
                         if t.startswith('set:'))
    self.background = 'background' in self.tokens

  @property
  def name(self):
    return '%s:%d' % (self.page.replace('docs/', ''), self.line)


def collect():
  blocks = []
  for page in PAGES:
    with open(os.path.join(REPO_ROOT, page)) as f:
      text = f.read()
    # The generated blocks' commands reproduce the measurements on the real
    # data (hours): not the tutorial's, and not run here.
    text = GENERATED.sub(lambda m: '\n' * m.group(0).count('\n'), text)
    for match in FENCE.finditer(text):
      before = text[:match.start()]
      annotation = ANNOTATION.search(before)
      blocks.append(Block(page, before.count('\n') + 1, match.group(1),
                          match.group(2),
                          annotation.group(1) if annotation else None))
  return blocks


BLOCKS = collect()


def test_every_block_says_how_it_is_tested():
  unmarked = [b.name for b in BLOCKS if b.mode is None]
  assert not unmarked, (
      'blocks without a <!-- docs-test: run|slow|skip=... --> line before '
      'them: %s' % unmarked)
  unknown = [(b.name, n) for b in BLOCKS for n in b.needs if n not in NEEDS]
  assert not unknown, unknown
  # The tutorial is taught by running it: most of its blocks run by default.
  tutorial = [b for b in BLOCKS if b.page == 'docs/cifar10-tutorial.md']
  assert sum(b.mode == 'run' for b in tutorial) >= 3


def _params(with_models):
  params = []
  for block in BLOCKS:
    if bool(MODELS.intersection(block.needs)) != with_models:
      continue
    marks = []
    if block.mode == 'slow':
      marks.append(pytest.mark.slow)
    elif block.mode == 'skip':
      continue
    params.append(pytest.param(block, id=block.name, marks=marks))
  return params


def _picture(size=32, seed=0):
  rng = np.random.RandomState(seed)
  return rng.randint(0, 256, (size, size, 3)).astype(np.uint8)


def _write_jpeg(path, picture):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.fromarray(picture).save(str(path), format='JPEG')


def _flags_of(module_name, cache={}):  # pylint: disable=dangerous-default-value
  """{flag name: default} of a command (its define_flags, in process)."""
  if module_name not in cache:
    sys.path.insert(0, os.path.join(REPO_ROOT, 'scripts'))
    import docs_generate  # pylint: disable=g-import-not-at-top
    found, _ = docs_generate.command_flags(module_name)
    cache[module_name] = {name: default for name, default, _, _ in found}
  return cache[module_name]


def _module_of(script):
  """cifar10/cifar10_train.py -> cifar10.cifar10_train, if it is a command."""
  from cli_support import launch  # pylint: disable=g-import-not-at-top
  module = script[:-3].replace('/', '.')
  return module if module in launch.COMMANDS.values() else None


class Sandbox(object):
  """The block's /tmp/ (root) and working folder (work)."""

  def __init__(self, tmp_path):
    self.root = tmp_path / 'tmp'
    self.work = tmp_path / 'work'
    self.root.mkdir()
    self.work.mkdir()

  def here(self, text):
    return text.replace('/tmp/', str(self.root) + '/')

  def prepare(self, block, models):
    # Like the tutorial's own tiny data set, 200 records a training file;
    # the evaluator's blocks score 1,000 test records (set:num_examples).
    cifar_fixtures.write_dataset(
        self.root / 'cifar10_data', records_per_file=200,
        test_labels=np.random.RandomState(0).randint(0, 10, 1000))
    if 'mnist_data' in block.needs:
      mnist_fixtures.write_mnist(self.root / 'mnist_data', num_train=500,
                                 num_test=100)
    if 'digit.png' in block.text:
      digit = np.zeros((28, 28), np.uint8)
      digit[4:24, 12:16] = 255
      (self.work / 'digit.png').write_bytes(common_images.encode_png(digit))
    if 'pictures' in block.needs:
      _write_jpeg(self.work / 'cat.jpg', _picture())
      _write_jpeg(self.work / 'rose.jpg', _picture(seed=1))
      (self.work / 'holiday').mkdir()
      (self.work / 'holiday' / 'boat.png').write_bytes(
          common_images.encode_png(_picture(48, seed=2)))
    if 'image_folders' in block.needs:
      for i, name in enumerate(['roses', 'tulips']):
        folder = self.root / 'flower_photos' / name
        folder.mkdir(parents=True)
        for j in range(30):
          picture = np.clip(_picture(seed=j) // 2 + 100 * i, 0, 255)
          (folder / ('%s_%d.png' % (name, j))).write_bytes(
              common_images.encode_png(picture.astype(np.uint8)))
      _write_jpeg(self.work / 'rose.jpg', _picture(seed=3))
    if {'cifar_checkpoint', 'cifar_features'} & set(block.needs):
      shutil.copytree(str(models['cifar_trained']['train_dir']),
                      str(self.root / 'cifar10_train'))
    if 'mnist_checkpoint' in block.needs:
      shutil.copytree(models['mnist_trained']['checkpoint_dir'],
                      str(self.root / 'mnist_checkpoints'))
    if 'cifar_export' in block.needs:
      shutil.copytree(models['cifar10_exported']['export_dir'],
                      str(self.root / 'cifar10_model'))


def _lines(text):
  """The block's command lines, backslash continuations joined."""
  return [line for line in text.replace('\\\n', ' ').splitlines()
          if line.strip() and not line.lstrip().startswith('#')]


def _with_settings(line, settings, sandbox):
  """line with --FLAG=VALUE added for each setting its command has, and each
  flag whose default is under /tmp/ and that the line leaves out pointed
  into the sandbox too: a block never writes to the real /tmp/."""
  match = SCRIPT.match(line.rstrip(' &'))
  module = match and _module_of(match.group(1))
  if not module:
    return line
  flags = _flags_of(module)
  extra = ['--%s=%s' % (name, value) for name, value in sorted(settings.items())
           if name in flags]
  given = set(re.findall(r'--(\w+)', line))
  extra += ['--%s=%s' % (name, sandbox.here(default))
            for name, default in sorted(flags.items())
            if isinstance(default, str) and default.startswith('/tmp/') and
            name not in given and name not in settings]
  if not extra:
    return line
  background = line.rstrip().endswith('&')
  return '%s %s%s' % (line.rstrip(' &'), ' '.join(extra),
                      ' &' if background else '')


def _run_block(block, sandbox, run_in_process, monkeypatch):
  lines = [_with_settings(sandbox.here(line), block.settings, sandbox)
           for line in _lines(block.text)]
  monkeypatch.chdir(sandbox.work)
  if block.language == 'python':
    namespace = {'__name__': '__docs__'}
    exec(compile(sandbox.here(block.text), block.name, 'exec'), namespace)  # pylint: disable=exec-used
    return
  in_process = not block.background and all(
      SCRIPT.match(line) and _module_of(SCRIPT.match(line).group(1))
      for line in lines)
  if in_process:
    for line in lines:
      match = SCRIPT.match(line)
      module = _module_of(match.group(1))
      result = run_in_process(module, shlex.split(match.group(2) or ''),
                              program=module.rsplit('.', 1)[1])
      assert result.returncode == 0, (line, result.stdout[-2000:],
                                      result.stderr[-3000:])
    return
  script = '\n'.join(
      re.sub(r'^python ([\w/]+\.py)',
             lambda m: 'python ' + os.path.join(REPO_ROOT, m.group(1)), line)
      for line in lines)
  env = dict(os.environ,
             PATH=os.path.dirname(sys.executable) + os.pathsep +
             os.environ.get('PATH', ''),
             PYTHONPATH=REPO_ROOT)
  # In a session of its own, so that what the block left running (a
  # parameter server) is stopped with it; output to a file, which no
  # leftover process can hold open.
  log_path = sandbox.root.parent / 'block.log'
  with open(str(log_path), 'w') as log:
    process = subprocess.Popen(['bash', '-c', script], cwd=str(sandbox.work),
                               env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
      returncode = process.wait(timeout=600)
    finally:
      try:
        os.killpg(process.pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
  output = log_path.read_text()
  assert returncode == 0, (script, output[-5000:])


@pytest.mark.parametrize('block', _params(with_models=False))
def test_block_runs(block, tmp_path, run_in_process, monkeypatch):
  if 'cifar10.kernels' in block.text and not os.path.isdir(
      os.path.join(REPO_ROOT, 'cifar10', 'kernels')):
    pytest.skip('cifar10/kernels/ is not in this checkout yet')
  sandbox = Sandbox(tmp_path)
  sandbox.prepare(block, {})
  _run_block(block, sandbox, run_in_process, monkeypatch)


@pytest.mark.parametrize('block', _params(with_models=True))
def test_block_with_a_trained_model_runs(block, tmp_path, run_in_process,
                                         monkeypatch, cifar_trained,
                                         mnist_trained, cifar10_exported):
  sandbox = Sandbox(tmp_path)
  sandbox.prepare(block, dict(cifar_trained=cifar_trained,
                              mnist_trained=mnist_trained,
                              cifar10_exported=cifar10_exported))
  if 'cifar_features' in block.needs:
    result = run_in_process('image_retraining.export_cifar10_features',
                            ['--checkpoint_dir', str(sandbox.root /
                                                     'cifar10_train'),
                             '--export_dir', str(sandbox.root /
                                                 'cifar10_features')])
    assert result.returncode == 0, result.stderr
  _run_block(block, sandbox, run_in_process, monkeypatch)


def test_pages_name_no_file_that_is_not_in_the_repository():
  """The code paths a page names in backquotes exist (`cifar10/cifar10.py`)."""
  missing = []
  for page in PAGES + ['docs/reference.md', 'docs/performance.md',
                       'docs/differences.md', 'README.md']:
    text = pathlib.Path(REPO_ROOT, page).read_text()
    for path in re.findall(r'`((?:cifar10|mnist_cnn|image_retraining|'
                           r'tutorials_common|cli_support|scripts|tests|'
                           r'notebooks)/[\w./]*)`', text):
      if not os.path.exists(os.path.join(REPO_ROOT, path)):
        missing.append((page, path))
  assert not missing, missing
