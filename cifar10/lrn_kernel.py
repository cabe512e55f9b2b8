"""The fused CPU kernels (lrn_kernel.cc, distort_kernel.cc): built once per
machine, then loaded.

TensorFlow has no bfloat16 LRN kernel, so under --precision=mixed_bfloat16
the LRN otherwise runs as float32 TensorFlow ops between casts, a quarter of
the step on CPUs with AMX; in float32 it is a chain of element-wise passes.
lrn_kernel.cc does the LRN and its gradient in one pass over each pixel,
computing in float32 (reading and writing bfloat16 under mixed_bfloat16).
distort_kernel.cc does the training images' crop, mirror, contrast and
standardisation in two passes over each image instead of a dozen TensorFlow
ops over the batch, which leaves the input pipeline's threads less of the
cores training needs (the README's Speed section has the
figures). Both are compiled into one library on first use with the C++
compiler TensorFlow's headers were made for (g++, or $CXX), for this
machine's CPU, into a cache folder, and loaded from there afterwards:

    python -m cifar10.lrn_kernel      # build now and say where it is

(exit status 0 also where there is no compiler, 1 where a build fails).

The cache is $CIFAR10_KERNEL_CACHE, else $XDG_CACHE_HOME/tf-classic-tutorials,
else ~/.cache/tf-classic-tutorials. One file per source, TensorFlow version
and CPU, written under a temporary name and renamed, so that processes
starting together neither see a half-written library nor build it twice.
Where no compiler is found or the build fails, load() returns None with the
reason in unavailable_reason(), and the LRN and the distortions run as
TensorFlow ops (slower; the same numbers to within rounding).
CIFAR10_LRN_KERNEL=off and CIFAR10_DISTORT_KERNEL=off switch each use off,
to compare.
"""
import hashlib
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

SOURCES = [os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
           for name in ('lrn_kernel.cc', 'distort_kernel.cc')]
# The variables that switch off each kernel's use (the library is the same).
SWITCH = 'CIFAR10_LRN_KERNEL'
DISTORT_SWITCH = 'CIFAR10_DISTORT_KERNEL'
_OFF = ('off', '0', 'no', 'false')
OPTIMIZATION = ['-O3', '-march=native', '-fno-math-errno']
# x86: 512-bit vectors where the CPU has them (a pixel's 64 channels are four
# of them), and -mno-avx512fp16 because the Eigen headers shipped with
# TensorFlow 2.21 do not compile with AVX512-FP16 enabled, which
# -march=native turns on where the CPU has it; the kernel does not use it.
X86_OPTIMIZATION = ['-mprefer-vector-width=512', '-mno-avx512fp16']
BUILD_TIMEOUT_SECONDS = 600

_loaded = {}  # cache_dir -> the loaded module, or None
_reasons = {}  # cache_dir -> why it is None


class BuildError(Exception):
  """The kernel could not be built or loaded; the message says why."""


class NoCompiler(BuildError):
  """No C++ compiler here: the kernel is optional, so not an error of main()."""


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


def _optimization():
  if platform.machine().lower() in ('x86_64', 'amd64', 'i686', 'i386'):
    return OPTIMIZATION + X86_OPTIMIZATION
  return list(OPTIMIZATION)


def _build_command(output, optimization=None):
  import tensorflow as tf
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
  import tensorflow as tf
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


def build(folder=None):
  """Compiles the kernel into the cache unless it is there; returns its path.

  Raises BuildError with a one-line reason.
  """
  try:
    path = library_path(folder)
  except OSError as e:
    raise BuildError('cannot read the kernel source %s: %s'
                     % (e.filename, e.strerror))
  if os.path.exists(path):
    return path
  compiler = _compiler()
  if not compiler or shutil.which(compiler[0]) is None:
    raise NoCompiler('no C++ compiler: %s was not found (install g++, or set '
                     'CXX)' % ' '.join(compiler))
  try:
    import fcntl  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise BuildError('building it needs a POSIX system')
  folder = os.path.dirname(path)
  try:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'lrn_kernel.lock'), 'w') as lock:
      fcntl.flock(lock, fcntl.LOCK_EX)  # Another process may be building it.
      if not os.path.exists(path):
        _build_into(path)
  except OSError as e:
    raise BuildError('cannot write the kernel cache %s: %s'
                     % (folder, e.strerror or e))
  return path


def _build_into(path):
  """Compiles the kernel to a temporary name beside path, then renames it."""
  print('cifar10: building the fused kernels (LRN, image distortions) for '
        'this CPU, once, into %s' % os.path.dirname(path), file=sys.stderr)
  handle, partial = tempfile.mkstemp(dir=os.path.dirname(path),
                                     prefix='.lrn_kernel-',
                                     suffix='.so.partial')
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


def load(folder=None, switch=SWITCH):
  """The kernels' ops (tutorial_lrn, tutorial_lrn_grad,
  tutorial_distort_images), or None.

  Builds the kernels first where they are not in the cache. None when the
  use that asks is switched off (switch: SWITCH for the LRN, DISTORT_SWITCH
  for the distortions) or they cannot be built or loaded;
  unavailable_reason() says why.
  """
  folder = folder or cache_dir()
  if os.environ.get(switch, 'auto').lower() in _OFF:
    _reasons[folder] = '%s=%s' % (switch, os.environ[switch])
    return None
  if folder not in _loaded:
    module = None
    try:
      module = _build_and_load(folder)
    except BuildError as e:
      _reasons[folder] = str(e)
      print('cifar10: the fused kernels are not available (%s); the LRN and '
            'the training-image distortions run as TensorFlow ops, slower.'
            % e, file=sys.stderr)
    _loaded[folder] = module
  return _loaded[folder]


def _build_and_load(folder):
  """The loaded kernel; a cached file that does not load is built again."""
  import tensorflow as tf
  for attempt in range(2):
    path = build(folder)
    try:
      return tf.load_op_library(path)
    except Exception as e:  # pylint: disable=broad-except
      reason = 'cannot load %s: %s' % (path,
                                      (str(e).strip().splitlines() or [''])[0])
      if attempt == 0:  # Damaged, or from another system: build it again.
        try:
          os.remove(path)
        except OSError:
          break
  raise BuildError(reason)


def unavailable_reason(folder=None):
  """Why load() returned None, or None where it did not."""
  return _reasons.get(folder or cache_dir())


def main(argv=()):
  """Builds the kernels ahead. Exit status 0 when built or when this machine
  has no compiler (the LRN and the distortions then run as TensorFlow ops),
  1 when a build fails."""
  import argparse  # pylint: disable=g-import-not-at-top
  argparse.ArgumentParser(
      prog='python -m cifar10.lrn_kernel',
      description='Builds the fused kernels (the LRN of '
      '--precision=mixed_bfloat16, the training-image distortions) into %s '
      '(or $CIFAR10_KERNEL_CACHE) unless they are there, and says where. No '
      'flags.' % cache_dir()).parse_args(argv)
  from tutorials_common import console  # pylint: disable=g-import-not-at-top
  console.quiet_tensorflow()
  try:
    path = build()
  except NoCompiler as e:
    print('lrn_kernel: not built, %s; the LRN and the distortions run as '
          'TensorFlow ops.' % e, file=sys.stderr)
    return 0
  except BuildError as e:
    print('lrn_kernel: %s' % e, file=sys.stderr)
    return 1
  print('The fused kernels are %s' % path)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
