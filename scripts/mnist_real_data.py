"""Trains the MNIST CNN on the real data and reports test accuracy and speed.

  python scripts/mnist_real_data.py --data_dir=../shared/datasets/mnist --steps=20000

runs mnist_cnn/mnist_deep.py with its defaults (batch 50, Adam 1e-4, dropout
0.5) for --steps steps in a fresh --work_dir and prints its log, ending with
the test accuracy and examples/sec. See docs/performance.md ("MNIST on the
real data" for a measured run. Exits with a message and status 0 when the
data is absent.
"""
import argparse
import os
import shutil
import subprocess
import sys

import bench_common


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default=os.path.join(
      bench_common.SHARED_DATASETS, 'mnist'),
                      help='Folder with the four MNIST files.')
  parser.add_argument('--steps', type=int, default=20000,
                      help='Training steps (steps).')
  parser.add_argument('--work_dir', default='/tmp/mnist_real',
                      help='Checkpoints and summaries go here (emptied first).')
  args = parser.parse_args()
  if not os.path.exists(os.path.join(args.data_dir,
                                     'train-images-idx3-ubyte.gz')):
    print('SKIPPED: no MNIST files in %s; pass --data_dir.' % args.data_dir)
    return 0
  shutil.rmtree(args.work_dir, ignore_errors=True)
  return subprocess.call(
      bench_common.command('mnist_cnn/mnist_deep.py') +
      ['--data_dir', args.data_dir, '--steps', str(args.steps),
       '--checkpoint_dir', os.path.join(args.work_dir, 'checkpoints'),
       '--log_dir', os.path.join(args.work_dir, 'logs'),
       '--run_name', 'real'],
      env=bench_common.ENV)


if __name__ == '__main__':
  sys.exit(main())
