"""The error types a command turns into one `prog: error: message` line.

Library code raises these (or subclasses of them) with a message that says
what is wrong and how to fix it; `cli_support.entry.run` prints the message
and exits with the status below, never a traceback.
"""


class UsageError(ValueError):
  """Bad input the user can fix: a file, a folder, a flag value (status 2)."""

  exit_status = 2


class CommandError(RuntimeError):
  """The command's work failed for a reason other than its input (status 1)."""

  exit_status = 1
