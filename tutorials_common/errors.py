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


# What TensorFlow wraps around the reason of an error. Graph mode: a header,
# where the node was defined (a Python traceback) and '[[node]]' lines, the
# reason last. Eager mode: a '{{function_node ...}}' prefix and an
# ' [Op:Name] name: ...' tail around the reason.
_GRAPH_NOISE = re.compile(r"^(Graph execution error:|Detected at node|File \"|"
                          r"Node: '|\[\[|Traceback)")
_FUNCTION_NODE = re.compile(r'^\{\{[^}]*\}\}\s*')
_OP_TAIL = re.compile(r'\s*\[Op:[^\]]*\].*$')
# tf.debugging.Assert's message: 'assertion failed: [reason] [data ...]'.
_ASSERTION = re.compile(r'^assertion failed: \[(.+?)\](\s*\[.*)?$')


def one_line(error):
  """The one line of an error that says what went wrong.

  For a TensorFlow error that is the reason TensorFlow gives, without the
  graph's traceback, the '[[node ...]]' lines and the eager op name; an
  error with no message is named by its type.
  """
  text = getattr(error, 'message', None) or str(error)
  lines = [_OP_TAIL.sub('', _FUNCTION_NODE.sub('', line.strip()))
           for line in text.splitlines()]
  graph_error = any(_GRAPH_NOISE.match(line) for line in lines)
  lines = [line for line in lines if line and not _GRAPH_NOISE.match(line)]
  if not lines:
    return type(error).__name__
  # A graph-mode error puts its reason after the traceback.
  line = lines[-1] if graph_error else lines[0]
  assertion = _ASSERTION.match(line)
  return assertion.group(1) if assertion else line
