"""Small helpers several test modules share: a BMP writer, the fuzz
example count of TensorFlow-backed properties, the skip of a module whose
optional extra is not installed, a script of scripts/ as a module, and a
program run in a fresh interpreter."""
import importlib.util
import json
import os
import struct
import subprocess
import sys

from hypothesis import settings
import pytest

from cifar_fixtures import REPO_ROOT


def bmp_bytes(image):
  """A 24-bit bottom-up BMP file of a uint8 [H, W, 3] RGB image (H or W
  may be 0)."""
  height, width, _ = image.shape
  stride = (3 * width + 3) // 4 * 4
  pixels = b''.join(image[y, :, ::-1].tobytes().ljust(stride, b'\0')
                    for y in range(height - 1, -1, -1))  # BGR, bottom first
  header = struct.pack('<2sIHHI', b'BM', 54 + len(pixels), 0, 0, 54)
  info = struct.pack('<IiiHHIIiiII', 40, width, height, 1, 24, 0, len(pixels),
                     2835, 2835, 0, 0)
  return header + info + pixels


def slow_examples():
  """max_examples for a property whose every example builds or runs
  TensorFlow (or writes an archive): a third of the profile's, at least 20."""
  return max(20, settings.default.max_examples // 3)


def skip_unless_installed(modules, reason):
  """Skips the calling test module unless every module in modules is
  installed. Unlike pytest.importorskip it does not import them: importing
  jupyterlab alone takes seconds of CPU, in every pytest worker."""
  missing = [name for name in modules if importlib.util.find_spec(name) is None]
  if missing:
    pytest.skip('%s (missing: %s)' % (reason, ', '.join(missing)),
                allow_module_level=True)


SCRIPTS = os.path.join(REPO_ROOT, 'scripts')


def load_script(file_name):
  """scripts/file_name as a module, to call its parts (or its main) in the
  test's process. scripts/ stays on sys.path, for the bench_common the
  scripts import."""
  if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)
  spec = importlib.util.spec_from_file_location(
      os.path.splitext(file_name)[0], os.path.join(SCRIPTS, file_name))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def fresh_interpreter_json(program, unset=()):
  """Runs `python -c program` in the repository root, with the environment
  variables in unset removed, and returns the JSON of its last line: what a
  fresh interpreter, which has not loaded TensorFlow yet, reports."""
  env = {k: v for k, v in os.environ.items() if k not in unset}
  result = subprocess.run([sys.executable, '-c', program], capture_output=True,
                          text=True, timeout=120, env=env, cwd=REPO_ROOT)
  assert result.returncode == 0, result.stderr
  return json.loads(result.stdout.strip().splitlines()[-1])
