"""The start-up every command shares: logging, flags, --help, one-line errors.

A command module has

    def run():
      entry.run(main, define_flags)

which cli_support.launch calls (the console script, `python cifar10_train.py`
and `python -m cifar10.cifar10_train` alike), and tests may call in process.
"""
import logging
import os
import signal
import sys
import threading

from absl import app
from absl import flags
import tensorflow.compat.v1 as tf

from tutorials_common import console
from tutorials_common import files
from tutorials_common import interrupts
from tutorials_common.errors import CommandError
from tutorials_common.errors import UsageError
from tutorials_common.errors import one_line

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


class _NoWriterThreadErrors(logging.Filter):
  """Drops TensorFlow's report of its event writer thread's failure: the
  command says the same in its one line when it next writes or closes."""

  def filter(self, record):
    return not record.getMessage().startswith('EventFileWriter writer thread '
                                              'error')


def _quiet_failed_writes(previous_hook):
  """threading.excepthook, less the tracebacks of threads that failed to
  write a file for want of space or permission (TensorFlow's event writer):
  the main thread meets the same failure and makes it one line."""

  def hook(args):
    if files.write_failure(args.exc_value) is None:
      previous_hook(args)

  hook.quiet_failed_writes = True
  return hook


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
      failure = files.as_write_error(e)
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
  # The commands print their own progress; TensorFlow's notices, INFO lines
  # (sessions, each checkpoint file) and deprecation notes would bury it.
  console.quiet_tensorflow()
  tf_logger = tf.get_logger()
  # absl's handler prints TensorFlow's Python log lines already.
  tf_logger.propagate = False
  if not any(isinstance(f, _NoWriterThreadErrors) for f in tf_logger.filters):
    tf_logger.addFilter(_NoWriterThreadErrors())
  if not getattr(threading.excepthook, 'quiet_failed_writes', False):
    threading.excepthook = _quiet_failed_writes(threading.excepthook)
  before = {name: FLAGS[name] for name in FLAGS}
  define_flags()
  # absl's --help lists the flags of the module named sys.argv[0].
  _adopt_command_flags(before, (argv or sys.argv)[0])
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _raise_terminated)
  app.run(_guarded(main, graph_mode), argv=argv,
          flags_parser=lambda args: _parse_flags(
              args, sys.modules[main.__module__].__doc__, arguments))
