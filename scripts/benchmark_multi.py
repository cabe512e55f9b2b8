"""Examples/sec of 1 vs 2 towers and of 1 vs 2 localhost workers, side by side.

Runs, one after the other on the same machine and data:
  cifar10_multi_gpu_train.py --num_gpus=1 and --num_gpus=2 (towers on GPUs, or
  on CPU devices where there are none), and cifar10_distributed_train.py with
  one parameter server and 1 or 2 workers on 127.0.0.1,
each for --steps steps of --batch_size images per tower/worker, and prints the
median examples/sec after warm-up and the ratio to the first row.

  python scripts/benchmark_multi.py --data_dir=../shared/datasets/cifar10

On a 2-core CPU expect no gain from a second tower or worker: both already
share the same two cores (README, Measured figures).
"""
from __future__ import absolute_import, division, print_function

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = re.compile(r': step (\d+), loss = [\d.]+ \(([\d.]+) examples/sec')
ENV = dict(os.environ, PYTHONUNBUFFERED='1', TF_CPP_MIN_LOG_LEVEL='2')


def _script(name):
  return os.path.join(REPO_ROOT, 'cifar10', name)


def _median_rate(log_text, warmup_lines=3):
  rates = [float(r) for _, r in RATE.findall(log_text)][warmup_lines:]
  return statistics.median(rates) if rates else float('nan')


def towers(num_towers, args, work):
  out = subprocess.run(
      [sys.executable, _script('cifar10_multi_gpu_train.py'),
       '--num_gpus', str(num_towers), '--data_dir', args.data_dir,
       '--train_dir', os.path.join(work, 'towers%d' % num_towers), '--fresh',
       '--batch_size', str(args.batch_size), '--max_steps', str(args.steps)],
      capture_output=True, text=True, env=ENV, check=True).stdout
  return _median_rate(out)


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def workers(num_workers, args, work):
  """Sum over workers of each worker's examples/sec."""
  ports = _free_ports(num_workers + 1)
  common = ['--ps_hosts', '127.0.0.1:%d' % ports[0], '--worker_hosts',
            ','.join('127.0.0.1:%d' % p for p in ports[1:]),
            '--data_dir', args.data_dir,
            '--train_dir', os.path.join(work, 'workers%d' % num_workers),
            '--batch_size', str(args.batch_size),
            '--max_steps', str(args.steps)]
  command = [sys.executable, _script('cifar10_distributed_train.py')] + common
  ps = subprocess.Popen(command + ['--job_name', 'ps'],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        env=ENV)
  try:
    procs = [subprocess.Popen(command + ['--job_name', 'worker',
                                         '--task_index', str(i)],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=ENV)
             for i in range(num_workers)]
    outputs = [p.communicate(timeout=1800)[0] for p in procs]
  finally:
    ps.kill()
    ps.wait()
  return sum(_median_rate(out) for out in outputs)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default=os.path.join(
      REPO_ROOT, '..', 'shared', 'datasets', 'cifar10'),
                      help='Folder holding cifar-10-batches-bin/.')
  parser.add_argument('--steps', type=int, default=150,
                      help='Training steps per configuration (steps).')
  parser.add_argument('--batch_size', type=int, default=128,
                      help='Images per tower or worker per step (images).')
  args = parser.parse_args()
  if not os.path.isdir(os.path.join(args.data_dir, 'cifar-10-batches-bin')):
    sys.exit('No CIFAR-10 data under %s: pass --data_dir.' % args.data_dir)
  work = tempfile.mkdtemp(prefix='benchmark_multi_')
  try:
    rows = [('1 tower', towers(1, args, work)),
            ('2 towers', towers(2, args, work)),
            ('1 localhost worker (+1 ps)', workers(1, args, work)),
            ('2 localhost workers (+1 ps)', workers(2, args, work))]
  finally:
    shutil.rmtree(work, ignore_errors=True)
  print('batch %d per tower/worker, %d steps, %d CPU cores' % (
      args.batch_size, args.steps, os.cpu_count()))
  print('| configuration | examples/sec | ratio |')
  print('| --- | ---: | ---: |')
  for name, rate in rows:
    print('| %s | %.1f | %.2f |' % (name, rate, rate / rows[0][1]))


if __name__ == '__main__':
  main()
