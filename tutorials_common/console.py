"""Keeps TensorFlow's own start-up notices off the console and out of notebooks.

    from tutorials_common import console
    console.quiet_tensorflow()   # before anything imports TensorFlow

TensorFlow prints C++ notices when it loads and when it first runs an op
(oneDNN's "custom operations are on", "Could not find cuda drivers", "failed
call to cuInit", the CPU features it was built for), before any log level
applies: TF_CPP_MIN_LOG_LEVEL does not stop them. In a notebook they land
under the cell as red stderr boxes. `quiet_tensorflow` passes what the
process writes to its standard error (file descriptor 2, where the C++ code
writes) through a filter that drops those notices and nothing else, and
keeps TensorFlow's Python INFO lines and deprecation notes out as well.
Every command calls it first (cli_support.entry.run, cli_support.launch),
and the notebooks call it in their first cell of imports.

With TF_CPP_MIN_LOG_LEVEL=0 it does nothing: that asks for everything
TensorFlow prints.
"""
import atexit
import contextlib
import logging
import os
import re
import sys
import threading

# A line of TensorFlow's C++ logging: severity, date, time, thread, file:line.
_CPP_LOG_LINE = re.compile(r'^([IWEF])\d{4} [\d:.]+\s+\d+ [\w.-]+:\d+\] (.*)')
# What it prints on every start or step that a user can neither act on nor
# needs: oneDNN's "custom operations are on" and "supports DT_UINT8 only ...",
# no CUDA driver or GPU on a CPU machine, the CPU features it was built for.
_NOTICE_TEXT = re.compile(r'oneDNN|cuInit|CUDA|cuda|cudart|TensorRT|'
                          r'DT_UINT8|cpu_feature_guard|This TensorFlow binary '
                          r'is optimized')
_LOAD_NOTICE = re.compile(r'^WARNING: All log messages before '
                          r'absl::InitializeLog\(\) is called|'
                          # The second line of cpu_feature_guard's notice.
                          r'^To enable the following instructions: .* rebuild '
                          r'TensorFlow with the appropriate compiler flags')


def verbose():
  """Whether the user asked for everything TensorFlow prints."""
  return os.environ.get('TF_CPP_MIN_LOG_LEVEL') == '0'


def is_tensorflow_notice(line):
  """Whether a line on stderr is TensorFlow's C++ chatter, not a real problem.

  Its INFO lines, and its warnings and errors about oneDNN, CUDA and the CPU
  (printed before any log level applies, and as 'E' lines on machines where
  nothing is wrong). Other C++ warnings and errors are real and stay.
  """
  if _LOAD_NOTICE.match(line):
    return True
  match = _CPP_LOG_LINE.match(line)
  if not match:
    return False
  return match.group(1) == 'I' or bool(_NOTICE_TEXT.search(match.group(2)))


class _NoDeprecationNotes(logging.Filter):
  """Drops TensorFlow's 'X is deprecated ... Instructions for updating' notes:
  the tutorials' tf.compat.v1 API is what they teach."""

  def filter(self, record):
    message = record.getMessage()
    return not ('is deprecated' in message or 'Instructions for updating' in
                message)


class _StderrFilter(object):
  """File descriptor 2 redirected into a pipe; a thread passes each line on
  to where fd 2 pointed before, but for is_tensorflow_notice lines."""

  def __init__(self):
    sys.stderr.flush()
    self._console = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    self._pump = threading.Thread(target=self._pass_on, args=(read_end,),
                                  name='stderr-filter', daemon=True)
    self._pump.start()

  def _pass_on(self, read_end):
    with os.fdopen(read_end, 'rb') as pipe:
      for line in pipe:
        if not is_tensorflow_notice(line.decode('utf-8', 'replace')):
          try:
            os.write(self._console, line)
          except OSError:
            return  # Where fd 2 pointed is gone: nothing left to show.

  def close(self):
    """Puts fd 2 back and lets the thread pass on what is left."""
    try:
      sys.stderr.flush()
    except (OSError, ValueError):
      pass
    os.dup2(self._console, 2)  # Closes the pipe's last write end.
    self._pump.join(timeout=5)
    os.close(self._console)


_filter = None
_filter_lock = threading.Lock()


def _stderr_is_the_process_own():
  """False where something else captures the Python-level stderr (pytest's
  capsys, a test harness) and fd 2 is not where the user looks; True on a
  console and in a Jupyter kernel, whose fd 2 goes to the cell's output."""
  if sys.stderr is sys.__stderr__:
    return True
  return type(sys.stderr).__module__.startswith('ipykernel')


def filter_stderr():
  """Starts filtering fd 2 for the rest of the process (once)."""
  global _filter
  with _filter_lock:
    if _filter is not None or verbose() or not _stderr_is_the_process_own():
      return
    _filter = _StderrFilter()
    atexit.register(_filter.close)


@contextlib.contextmanager
def _keras_not_imported_with_tensorflow():
  """While TensorFlow loads, keeps it from importing Keras 3 whole.

  TensorFlow imports keras.src.optimizers when it loads (to register Keras
  optimizers for SavedModels that hold them), and with it all of Keras,
  matplotlib.pyplot and IPython: a large part of a command's start-up. The
  tutorials are tf.compat.v1 graph code and use no Keras. With
  TF_USE_LEGACY_KERAS=1 TensorFlow looks for tf_keras instead and, where it
  is not installed, skips the import. The variable is set only for the
  import: TensorFlow reads it again when tf.keras is first used, which then
  loads Keras 3 as usual, and the processes a command starts never see it.
  """
  saved = os.environ.get('TF_USE_LEGACY_KERAS')
  if saved is None:
    os.environ['TF_USE_LEGACY_KERAS'] = '1'
  try:
    yield
  finally:
    if saved is None:
      os.environ.pop('TF_USE_LEGACY_KERAS', None)


def quiet_tensorflow():
  """Loads TensorFlow with its notices kept off the console; idempotent.

  Filters fd 2 from now on (filter_stderr), imports TensorFlow (without Keras
  3, unless it is loaded already), and sets TensorFlow's Python logger to
  warnings and above, less its deprecation notes. Call it before anything
  imports TensorFlow: the notices of its loading come only once.
  """
  if not verbose():
    # Read once, when TensorFlow's C++ library loads.
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  filter_stderr()
  with _keras_not_imported_with_tensorflow():
    import tensorflow  # pylint: disable=g-import-not-at-top
  if verbose():
    return
  logger = tensorflow.get_logger()
  logger.setLevel(logging.WARNING)
  if not any(isinstance(f, _NoDeprecationNotes) for f in logger.filters):
    logger.addFilter(_NoDeprecationNotes())
