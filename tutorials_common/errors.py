"""The error types a command turns into one `prog: error: message` line.

Library code raises these (or subclasses of them) with a message that says
what is wrong and how to fix it; `cli_support.entry.run` prints the message
and exits with the status below, never a traceback. `one_line` is how any
TensorFlow (or other) error becomes part of such a message.
"""
import re


class UsageError(ValueError):
  """Bad input the user can fix: a file, a folder, a flag value (status 2)."""

  exit_status = 2


class CommandError(RuntimeError):
  """The command's work failed for a reason other than its input (status 1)."""

  exit_status = 1


# What TensorFlow wraps around the reason of an error: the graph-mode header,
# the eager '{{function_node ...}}' prefix and the ' [Op:Name] name: ...' tail.
_TF_HEADER = 'Graph execution error:'
_FUNCTION_NODE = re.compile(r'^\{\{[^}]*\}\}\s*')
_OP_TAIL = re.compile(r'\s*\[Op:[^\]]*\].*$')


def one_line(error):
  """The one line of an error that says what went wrong.

  For a TensorFlow error that is the reason TensorFlow gives, without the
  graph's traceback, the '[[node ...]]' lines and the eager op name; an
  error with no message is named by its type.
  """
  text = getattr(error, 'message', None) or str(error)
  lines = [line.strip() for line in text.splitlines()]
  lines = [line for line in lines
           if line and line != _TF_HEADER and not line.startswith('[[') and
           not line.startswith('Traceback') and not line.startswith('File "')]
  for line in lines:
    line = _OP_TAIL.sub('', _FUNCTION_NODE.sub('', line))
    if line:
      return line
  return type(error).__name__
