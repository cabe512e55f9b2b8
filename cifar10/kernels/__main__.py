"""Builds and checks the fused kernels ahead, and says what this machine uses.

    python -m cifar10.kernels

Builds the kernels into the cache unless they are there, checks the cached
library against its record (a damaged one is built again), and prints
where it is and, for each kernel, its time against TensorFlow's ops on this
machine and which of the two the commands use. Exit status 0 also where
there is no C++ compiler (the commands then use TensorFlow's ops), 1 where
a build or check fails.
"""
import argparse
import sys

from tutorials_common import console


def main(argv=()):
  argparse.ArgumentParser(
      prog='python -m cifar10.kernels',
      description=__doc__.split('\n\n')[0] + ' Cache: $CIFAR10_KERNEL_CACHE, '
      'else ~/.cache/tf-classic-tutorials. No flags.').parse_args(argv)
  console.quiet_tensorflow()
  from cifar10.kernels import build  # pylint: disable=g-import-not-at-top
  try:
    path, record = build.ready()
  except build.NoCompiler as e:
    print('cifar10.kernels: not built, %s; the LRN and the distortions run '
          'as TensorFlow ops.' % e, file=sys.stderr)
    return 0
  except build.BuildError as e:
    print('cifar10.kernels: %s' % e, file=sys.stderr)
    return 1
  print('The fused kernels are %s, checked against TensorFlow\'s ops on '
        'this machine:' % path)
  print(build.choices_text(record))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
