"""The error the retraining commands raise for bad input."""
from tutorials_common.errors import UsageError


class RetrainError(UsageError):
  """Bad input to image retraining: one `prog: error:` line, exit status 2."""
