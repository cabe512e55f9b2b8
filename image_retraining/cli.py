"""Shared command-line plumbing: one-line errors and the absl entry point."""
import os
import sys

from image_retraining.errors import RetrainError


def guarded(body):
  """main(argv) calling body(); RetrainError -> 'ERROR: ...' and status 1."""
  def main(argv):
    del argv
    try:
      return body() or 0
    except RetrainError as e:
      sys.stderr.write('ERROR: %s\n' % e)
      return 1
  return main


def run_app(define_flags, main):
  """Console-script entry: define the flags, then absl.app.run(main)."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  from absl import app  # pylint: disable=g-import-not-at-top
  define_flags()
  app.run(main)
