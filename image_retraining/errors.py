"""The error the retraining commands raise for bad input."""
from cli_support.errors import UsageError


class RetrainError(UsageError):
  """Bad input to image retraining: one `prog: error:` line, exit status 2."""
