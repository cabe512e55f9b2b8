"""The start-up every command shares: logging, flags, --help, one-line errors.

A command module ends with

    def run():
      entry.run(main, define_flags)

    if __name__ == '__main__':
      run()

and `run` is also its console script. Before it can import this module, a
command run as a file (`python cifar10_train.py` from its folder) puts the
repository root on sys.path itself: that is the one line of start-up that
cannot live here.
"""
import contextlib
import logging
import os
import re
import signal
import sys
import threading

# TF_CPP_MIN_LOG_LEVEL=0 asks for everything TensorFlow prints; otherwise the
# commands keep its notices off the console (see is_tensorflow_notice).
VERBOSE = os.environ.get('TF_CPP_MIN_LOG_LEVEL') == '0'
# TensorFlow reads this once, when its C++ library loads: it must be set
# before the command imports tensorflow, so it is set when this module loads.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

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


@contextlib.contextmanager
def tensorflow_notices_filtered():
  """Passes what the process writes to stderr (file descriptor 2, where
  TensorFlow's C++ code writes too) on, but for is_tensorflow_notice lines.

  Does nothing with TF_CPP_MIN_LOG_LEVEL=0, or where sys.stderr is not the
  process's own (a test or notebook that captures it).
  """
  if VERBOSE or sys.stderr is not sys.__stderr__:
    yield
    return
  sys.stderr.flush()
  console = os.dup(2)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)

  def pump():
    with os.fdopen(read_end, 'rb') as pipe:
      for line in pipe:
        if not is_tensorflow_notice(line.decode('utf-8', 'replace')):
          os.write(console, line)

  pumping = threading.Thread(target=pump, name='stderr-filter', daemon=True)
  pumping.start()
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(console, 2)  # Closes the pipe's last write end: the pump ends.
    pumping.join(timeout=5)
    os.close(console)


class _NoDeprecationNotes(logging.Filter):
  """Drops TensorFlow's 'X is deprecated ... Instructions for updating' notes:
  the tutorials' tf.compat.v1 API is what they teach."""

  def filter(self, record):
    message = record.getMessage()
    return not ('is deprecated' in message or 'Instructions for updating' in
                message)


@contextlib.contextmanager
def keras_not_imported_with_tensorflow():
  """While TensorFlow loads, keeps it from importing Keras 3 whole.

  TensorFlow imports keras.src.optimizers when it loads (to register Keras
  optimizers for SavedModels that hold them), and with it all of Keras,
  matplotlib.pyplot and IPython: a large part of a command's start-up
  (measured in the README, Tests). The commands are tf.compat.v1 graph code
  and use no Keras. With TF_USE_LEGACY_KERAS=1 TensorFlow looks for tf_keras instead and, where it
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


with tensorflow_notices_filtered(), keras_not_imported_with_tensorflow():
  import tensorflow  # noqa: F401,E402  # pylint: disable=g-import-not-at-top,unused-import

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

from tutorials_common.errors import CommandError  # noqa: E402
from tutorials_common.errors import UsageError  # noqa: E402
from tutorials_common import files  # noqa: E402
from tutorials_common import interrupts  # noqa: E402
from tutorials_common.errors import one_line  # noqa: E402

FLAGS = flags.FLAGS

HELP_ARGS = ('--help', '-help', '--helpshort', '-h', '-?', '--helpfull',
             '--helpxml')


def program_name(argv0=None):
  """The name a user typed: 'cifar10_train' for cifar10_train.py too."""
  name = os.path.basename(argv0 or sys.argv[0])
  return name[:-3] if name.endswith('.py') else name


def fail(message, status=2, program=None):
  """Prints `prog: error: message` on stderr and exits with status."""
  sys.stderr.write('%s: error: %s\n' % (program or program_name(), message))
  sys.stderr.flush()
  sys.exit(status)


def require_folder(flag_name):
  """Makes a path flag that names an existing file a flag error."""
  flags.register_validator(
      flag_name, lambda path: not (path and os.path.isfile(path)),
      message='--%s must be a folder, but that path is a file.' % flag_name)


def _adopt_command_flags(before, module_name):
  """Makes the flags define_flags added key flags of the main module.

  absl's --help lists only the main module's key flags: a flag defined in a
  shared module (cifar10_flags.define_flags) would be missing, and under a console
  script, whose main module is the generated wrapper, every flag would be.
  """
  for name in list(FLAGS):
    flag = FLAGS[name]
    if before.get(name) is not flag:
      FLAGS.register_key_flag_for_module(module_name, flag)


# The help flags answered with the command's own usage; absl answers the
# others (--helpfull, --helpxml).
SHORT_HELP_ARGS = ('--help', '-help', '--helpshort', '-h', '-?')


def usage_text(doc, program, arguments=''):
  """What --help prints: a usage line a user can copy, the command's
  docstring (what it does, how to run it), then its flags with their
  defaults."""
  usage = 'USAGE: %s [flags]%s' % (program, ' ' + arguments if arguments else '')
  # absl heads the list with the module's path (sys.argv[0]): left out.
  flag_help = '\n'.join(line for line in
                        FLAGS.module_help(sys.argv[0]).splitlines()
                        if line.startswith(' '))
  return '%s\n\n%s\n\nflags:\n\n%s\n\nTry --helpfull to get a list of all ' \
      'flags.\n' % (usage, (doc or '').strip(), flag_help)


def _parse_flags(argv, doc=None, arguments=''):
  """absl's parse, with a flag error as one line and --help exiting 0."""
  if any(arg in SHORT_HELP_ARGS for arg in argv[1:]):
    sys.stdout.write(usage_text(doc, program_name(argv[0]), arguments))
    sys.stdout.flush()
    sys.exit(0)
  try:
    return FLAGS(argv)
  except flags.Error as e:
    fail(one_line(e))
  except SystemExit as e:
    # absl prints the help and exits with status 1; asking for help is not
    # a failure.
    if e.code == 1 and any(arg in HELP_ARGS for arg in argv[1:]):
      sys.exit(0)
    raise


def _guarded(main, graph_mode):
  def guarded_main(argv):
    try:
      if not graph_mode:
        return main(argv)
      # tf.compat.v1 code builds into the default graph; a graph of its own
      # also keeps eager mode on for the rest of the process (a notebook, a
      # test that runs several commands).
      with tf.Graph().as_default():
        return main(argv)
    except (UsageError, CommandError) as e:
      fail(e, e.exit_status)
    except interrupts.Interrupted as e:
      # A loop stopped at a safe point with its work saved: its own line.
      print(e)
      sys.stdout.flush()
      sys.exit(e.exit_status)
    except KeyboardInterrupt as e:
      if isinstance(e, _Terminated):
        fail('stopped by SIGTERM.', interrupts.EXIT_STATUS[signal.SIGTERM])
      fail('interrupted (Ctrl-C).', interrupts.EXIT_STATUS[signal.SIGINT])
    except Exception as e:  # pylint: disable=broad-except
      # A full disk or a read-only folder met where no code expected it
      # (a summary, TensorFlow's graph file): still one line.
      failure = files.write_failed(e)
      if failure is None:
        raise
      fail(failure, failure.exit_status)
  return guarded_main


class _Terminated(KeyboardInterrupt):
  """SIGTERM, handled as Ctrl-C is: one line, no traceback."""


def _raise_terminated(signal_number, frame):
  del signal_number, frame  # Unused.
  raise _Terminated()


def run(main, define_flags, graph_mode=True, argv=None, arguments=''):
  """Defines the command's flags and runs main under absl.

  main(argv) may raise UsageError (bad input: exit status 2) or CommandError
  (failure: status 1); either becomes one `prog: error: message` line.
  graph_mode: run TensorFlow 1.x-style graphs (tf.compat.v1), as the
  tutorials do; False keeps TensorFlow 2's eager mode.
  argv: the command line (default sys.argv).
  arguments: the positional arguments main takes, for the usage line of
    --help (e.g. 'IMAGE [IMAGE ...]').
  """
  tf_logger = tf.get_logger()
  # absl's handler prints TensorFlow's Python log lines already.
  tf_logger.propagate = False
  if not VERBOSE:
    # The commands print their own progress; TensorFlow's INFO lines
    # (sessions, each checkpoint file) and deprecation notes would bury it.
    tf_logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _NoDeprecationNotes) for f in tf_logger.filters):
      tf_logger.addFilter(_NoDeprecationNotes())
  before = {name: FLAGS[name] for name in FLAGS}
  define_flags()
  # absl's --help lists the flags of the module named sys.argv[0].
  _adopt_command_flags(before, (argv or sys.argv)[0])
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _raise_terminated)
  with tensorflow_notices_filtered():
    app.run(_guarded(main, graph_mode), argv=argv,
            flags_parser=lambda args: _parse_flags(
                args, sys.modules[main.__module__].__doc__, arguments))
