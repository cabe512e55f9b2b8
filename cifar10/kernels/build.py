"""The fused kernels' build, cache and check: compiled once per machine.

lrn_kernel.cc (the LRN and its gradient in one pass over each pixel, in
float32 or reading and writing bfloat16) and distort_kernel.cc (the
training images' crop, mirror, contrast and standardisation in two passes
over each image) are compiled into one library with the C++ compiler
TensorFlow's headers were made for (g++, or $CXX), for this machine's CPU,
into a cache folder:

    $CIFAR10_KERNEL_CACHE, else $XDG_CACHE_HOME/tf-classic-tutorials,
    else ~/.cache/tf-classic-tutorials

One library per source, TensorFlow version and CPU, written under a
temporary name and renamed, so that processes starting together neither
see a half-written library nor build it twice. Before any process loads a
new library, a child process loads it (a damaged file crashes the child,
not the command), checks its ops against TensorFlow's and times each
kernel against TensorFlow's ops at the network's shapes; the record of that
check (the library's checksum, the times, and so which kernels this machine
uses) is written beside it. A library whose checksum no longer matches its
record, or that fails the check, is built again once, else left unused
with one line saying why: the LRN and the distortions then run as
TensorFlow ops, the same numbers to within rounding.
"""
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

from tutorials_common import files

KERNELS_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCES = [os.path.join(KERNELS_DIR, name)
           for name in ('lrn_kernel.cc', 'distort_kernel.cc')]
OPTIMIZATION = ['-O3', '-march=native', '-fno-math-errno']
# x86: 512-bit vectors where the CPU has them (a pixel's 64 channels are four
# of them), and -mno-avx512fp16 because the Eigen headers shipped with
# TensorFlow 2.21 do not compile with AVX512-FP16 enabled, which
# -march=native turns on where the CPU has it; the kernels do not use it.
X86_OPTIMIZATION = ['-mprefer-vector-width=512', '-mno-avx512fp16']
BUILD_TIMEOUT_SECONDS = 600
CHECK_TIMEOUT_SECONDS = 300


class BuildError(Exception):
  """The kernels could not be built, checked or loaded; the message says why."""


class NoCompiler(BuildError):
  """No C++ compiler here: the kernels are optional, so not an error."""


def cache_dir():
  """Where the built kernels are kept."""
  if os.environ.get('CIFAR10_KERNEL_CACHE'):
    return os.environ['CIFAR10_KERNEL_CACHE']
  base = (os.environ.get('XDG_CACHE_HOME') or
          os.path.join(os.path.expanduser('~'), '.cache'))
  return os.path.join(base, 'tf-classic-tutorials')


def _cpu_flags():
  """This CPU's feature flags: -march=native builds for them."""
  try:
    with open('/proc/cpuinfo') as cpuinfo:
      for line in cpuinfo:
        if line.startswith('flags'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def _compiler():
  """The compiler's command line, as a list ($CXX may be 'ccache g++')."""
  return shlex.split(os.environ.get('CXX') or 'g++')


def has_compiler():
  """Whether the C++ compiler ($CXX, else g++) is installed."""
  compiler = _compiler()
  return bool(compiler) and shutil.which(compiler[0]) is not None


def _optimization():
  if platform.machine().lower() in ('x86_64', 'amd64', 'i686', 'i386'):
    return OPTIMIZATION + X86_OPTIMIZATION
  return list(OPTIMIZATION)


def _build_command(output, optimization=None):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if optimization is None:
    optimization = _optimization()
  return (_compiler() + ['-shared', '-fPIC', '-w'] + optimization +
          tf.sysconfig.get_compile_flags() + SOURCES + ['-o', output] +
          tf.sysconfig.get_link_flags())


def _compile(output):
  """Runs the compiler; returns its CompletedProcess."""
  result = subprocess.run(_build_command(output), capture_output=True,
                          text=True, timeout=BUILD_TIMEOUT_SECONDS)
  if result.returncode != 0 and '-mno-avx512fp16' in result.stderr:
    # A compiler older than AVX512-FP16 (GCC < 12) neither knows the flag
    # nor turns the extension on.
    result = subprocess.run(
        _build_command(output, [flag for flag in _optimization()
                                if flag != '-mno-avx512fp16']),
        capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS)
  return result


def library_path(folder=None):
  """The file the kernels for these sources, TensorFlow and CPU are built into."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  key = hashlib.sha256()
  for name in SOURCES:
    with open(name, 'rb') as source:
      key.update(source.read())
  # The flags, not the paths: a clone elsewhere finds the same kernels.
  for part in ([tf.__version__, _cpu_flags()] +
               [arg for arg in _build_command('')
                if arg not in SOURCES + ['']]):
    key.update(part.encode() + b'\0')
  return os.path.join(folder or cache_dir(),
                      'lrn_kernel-%s.so' % key.hexdigest()[:16])


def record_path(library):
  """The check's record, beside the library it describes."""
  return library[:-len('.so')] + '.json'


def build(folder=None):
  """Compiles the kernels into the cache unless they are there; returns the
  library's path. Raises BuildError with a one-line reason."""
  try:
    path = library_path(folder)
  except OSError as e:
    raise BuildError('cannot read the kernel source %s: %s'
                     % (e.filename, e.strerror))
  if os.path.exists(path):
    return path
  if not has_compiler():
    compiler = _compiler()
    raise NoCompiler('no C++ compiler: %s was not found (install g++, or set '
                     'CXX)' % ' '.join(compiler))
  with _locked(os.path.dirname(path)):
    if not os.path.exists(path):
      _build_into(path)
  return path


class _locked(object):
  """The cache folder's lock, made if need be: one process builds or
  checks at a time."""

  def __init__(self, folder):
    self._folder = folder

  def __enter__(self):
    try:
      import fcntl  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise BuildError('building the kernels needs a POSIX system')
    try:
      os.makedirs(self._folder, exist_ok=True)
      self._lock = open(os.path.join(self._folder, 'lrn_kernel.lock'), 'w')
    except OSError as e:
      raise BuildError('cannot write the kernel cache %s: %s'
                       % (self._folder, e.strerror or e))
    fcntl.flock(self._lock, fcntl.LOCK_EX)
    return self

  def __exit__(self, *exc_info):
    self._lock.close()  # Releases the lock.
    return False


def _build_into(path):
  """Compiles the kernels to a temporary name beside path, then renames."""
  print('cifar10: building the fused kernels (LRN, image distortions) for '
        'this CPU, once, into %s' % os.path.dirname(path), file=sys.stderr)
  try:
    handle, partial = tempfile.mkstemp(dir=os.path.dirname(path),
                                       prefix='.lrn_kernel-',
                                       suffix='.so.partial')
  except OSError as e:
    raise BuildError('cannot write the kernel cache %s: %s'
                     % (os.path.dirname(path), e.strerror or e))
  os.close(handle)
  try:
    try:
      result = _compile(partial)
    except (OSError, subprocess.TimeoutExpired) as e:
      raise BuildError('%s failed: %s' % (' '.join(_compiler()), e))
    if result.returncode != 0:
      errors = [line for line in result.stderr.splitlines()
                if re.search(r'\berror:', line)]
      raise BuildError('%s could not compile %s: %s' % (
          ' '.join(_compiler()),
          ' and '.join(os.path.basename(name) for name in SOURCES),
          (errors or result.stderr.splitlines() or ['no message'])[0]))
    os.chmod(partial, 0o755)  # Readable by all, as a compiler leaves it.
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


def checksum(path):
  """The SHA-256 of a file, hex."""
  return files.file_digest(path, 'sha256')


def read_record(library):
  """The check's record of library where it matches the file as it is now
  (its checksum), else None."""
  try:
    with open(record_path(library)) as f:
      record = json.load(f)
    if record.get('sha256') == checksum(library):
      return record
  except (OSError, ValueError, AttributeError):
    pass
  return None


def _child_failure(result):
  """Why the checking process failed, in a few words."""
  if result.returncode < 0:
    try:
      name = signal.Signals(-result.returncode).name
    except ValueError:
      name = 'signal %d' % -result.returncode
    return 'loading it crashed a process (%s)' % name
  lines = [line for line in (result.stdout + result.stderr).splitlines()
           if line.startswith('check: ')]
  return lines[-1][len('check: '):] if lines else (
      'the check exited with status %d' % result.returncode)


def check(library):
  """Loads library in a child process, checks and times its kernels, and
  writes the record beside it; returns the record. Raises BuildError."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  try:
    result = subprocess.run(
        [sys.executable, '-m', 'cifar10.kernels.check', library],
        capture_output=True, text=True, timeout=CHECK_TIMEOUT_SECONDS,
        env=env, cwd=os.path.dirname(os.path.dirname(KERNELS_DIR)))
  except (OSError, subprocess.TimeoutExpired) as e:
    raise BuildError('cannot check %s: %s' % (library, e))
  if result.returncode != 0:
    raise BuildError('%s is not usable: %s' % (library, _child_failure(result)))
  try:
    record = json.loads(result.stdout.strip().splitlines()[-1])
  except (ValueError, IndexError):
    raise BuildError('cannot check %s: the check printed no result' % library)
  record['sha256'] = checksum(library)
  partial = record_path(library) + '.partial'
  try:
    with open(partial, 'w') as f:
      json.dump(record, f, indent=1, sort_keys=True)
    os.replace(partial, record_path(library))
  except OSError as e:
    raise BuildError('cannot write the kernel cache %s: %s'
                     % (os.path.dirname(library), e.strerror or e))
  return record


def _remove(*paths):
  for path in paths:
    try:
      os.remove(path)
    except FileNotFoundError:
      pass


def ready(folder=None):
  """(library path, record) of kernels that are built and checked, building
  and checking them where they are not: a library that fails its check
  (truncated, empty, foreign, or built against another TensorFlow) is
  removed and built again once. Raises BuildError with a one-line reason."""
  for attempt in range(2):
    path = build(folder)
    record = read_record(path)
    if record is not None:
      return path, record
    with _locked(os.path.dirname(path)):
      record = read_record(path)
      if record is not None:
        return path, record
      try:
        return path, check(path)
      except BuildError as e:
        reason = e
        # Only this project's own file, named for its sources: built again.
        _remove(path, record_path(path))
        if attempt:
          break
  raise reason


def uses(record, kernel, dtype):
  """Whether record's check chose the fused kernel (kernel 'lrn' or
  'distort') for dtype on this machine: it did where the kernel was faster
  than TensorFlow's ops."""
  try:
    return bool(record['choices'][kernel][dtype]['fused'])
  except (KeyError, TypeError):
    return False


def choices_text(record):
  """The lines `python -m cifar10.kernels` prints: each kernel's times and
  what this machine uses."""
  lines = []
  for kernel, what in (('lrn', 'LRN and its gradient'),
                       ('distort', 'training-image distortions')):
    for dtype, choice in sorted(record.get('choices', {}).get(kernel,
                                                               {}).items()):
      lines.append('  %s, %s (%s): fused kernel %.2f ms, TensorFlow ops %.2f '
                   'ms: uses %s.' % (
                       what, dtype, choice['shape'], choice['fused_ms'],
                       choice['ops_ms'], 'the fused kernel' if choice['fused']
                       else 'TensorFlow\'s ops'))
  return '\n'.join(lines)
