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
import os
import re
import sys
import tempfile

# TensorFlow reads this once, when its C++ library loads: it must be set
# before the command imports tensorflow, so it is set when this module loads.
# It keeps TensorFlow's start-up chatter (CPU feature and oneDNN notices) off
# the console; a user who wants it sets TF_CPP_MIN_LOG_LEVEL=0.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# Two notices TensorFlow's C++ libraries print while loading, before any
# log level applies: that logging is not set up yet, and that there is no
# CUDA driver (on a machine without a GPU, which is expected).
_LOAD_NOTICES = re.compile(r'All log messages before absl::InitializeLog|'
                           r'cudart_stub\.cc:\d+\] Could not find cuda drivers')


def _import_tensorflow_quietly():
  """Imports TensorFlow, passing on whatever it prints but _LOAD_NOTICES."""
  if 'tensorflow' in sys.modules or os.environ['TF_CPP_MIN_LOG_LEVEL'] < '1':
    return
  sys.stderr.flush()
  saved_stderr = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
    finally:
      os.dup2(saved_stderr, 2)
      os.close(saved_stderr)
      captured.seek(0)
      for line in captured.read().decode('utf-8', 'replace').splitlines():
        if not _LOAD_NOTICES.search(line):
          sys.stderr.write(line + '\n')


_import_tensorflow_quietly()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

from tutorials_common.errors import CommandError  # noqa: E402
from tutorials_common.errors import UsageError  # noqa: E402
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
  shared module (cifar10.define_flags) would be missing, and under a console
  script, whose main module is the generated wrapper, every flag would be.
  """
  for name in list(FLAGS):
    flag = FLAGS[name]
    if before.get(name) is not flag:
      FLAGS.register_key_flag_for_module(module_name, flag)


def _parse_flags(argv):
  """absl's parse, with a flag error as one line and --help exiting 0."""
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
  return guarded_main


def run(main, define_flags, graph_mode=True, argv=None):
  """Defines the command's flags and runs main under absl.

  main(argv) may raise UsageError (bad input: exit status 2) or CommandError
  (failure: status 1); either becomes one `prog: error: message` line.
  graph_mode: run TensorFlow 1.x-style graphs (tf.compat.v1), as the
  tutorials do; False keeps TensorFlow 2's eager mode.
  argv: the command line (default sys.argv).
  """
  # absl's handler prints TensorFlow's Python log lines already.
  tf.get_logger().propagate = False
  before = {name: FLAGS[name] for name in FLAGS}
  define_flags()
  # absl's --help lists the flags of the module named sys.argv[0].
  _adopt_command_flags(before, (argv or sys.argv)[0])
  app.run(_guarded(main, graph_mode), argv=argv, flags_parser=_parse_flags)
