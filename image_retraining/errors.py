"""The one error class the retraining commands turn into a one-line message."""


class RetrainError(Exception):
  """Bad input to image retraining: reported as one line, exit status 1."""
