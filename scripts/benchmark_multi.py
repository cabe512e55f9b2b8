"""Examples/sec of 1 vs 2 towers and of 1 vs 2 localhost workers, side by side.

Runs, one after the other on the same machine and data:
  cifar10_multi_gpu_train.py --num_gpus=1 and --num_gpus=2 (towers on GPUs, or
  on CPU devices where there are none), and cifar10_distributed_train.py with
  one parameter server and 1 or 2 workers on 127.0.0.1,
each for --steps steps of --batch_size images per tower/worker, and prints the
median examples/sec after warm-up and the ratio to the first row.

  python scripts/benchmark_multi.py --data_dir=../shared/datasets/cifar10

On a 2-core CPU expect no gain from a second tower or worker: both already
share the same two cores (docs/performance.md, Towers and workers).
"""
import argparse
import os
import shutil
import subprocess
import tempfile

import bench_common


def towers(num_towers, args, work):
  out = bench_common.run(
      bench_common.command('cifar10/cifar10_multi_gpu_train.py') +
      ['--num_gpus', str(num_towers), '--data_dir', args.data_dir,
       '--train_dir', os.path.join(work, 'towers%d' % num_towers), '--fresh',
       '--batch_size', str(args.batch_size), '--max_steps', str(args.steps)],
      timeout=3600)
  return bench_common.median_rate(out, warmup_lines=3)


def workers(num_workers, args, work):
  """Sum over workers of each worker's examples/sec."""
  ports = bench_common.free_ports(num_workers + 1)
  common = ['--ps_hosts', '127.0.0.1:%d' % ports[0], '--worker_hosts',
            ','.join('127.0.0.1:%d' % p for p in ports[1:]),
            '--data_dir', args.data_dir,
            '--train_dir', os.path.join(work, 'workers%d' % num_workers),
            '--batch_size', str(args.batch_size),
            '--max_steps', str(args.steps)]
  command = bench_common.command(
      'cifar10/cifar10_distributed_train.py') + common
  ps = subprocess.Popen(command + ['--job_name', 'ps'],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        env=bench_common.ENV)
  try:
    procs = [subprocess.Popen(command + ['--job_name', 'worker',
                                         '--task_index', str(i)],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              env=bench_common.ENV)
             for i in range(num_workers)]
    outputs = [p.communicate(timeout=1800)[0] for p in procs]
  finally:
    ps.kill()
    ps.wait()
  return sum(bench_common.median_rate(out, warmup_lines=3)
             for out in outputs)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default=os.path.join(
      bench_common.SHARED_DATASETS, 'cifar10'),
                      help='Folder holding cifar-10-batches-bin/.')
  parser.add_argument('--steps', type=int, default=150,
                      help='Training steps per configuration (steps).')
  parser.add_argument('--batch_size', type=int, default=128,
                      help='Images per tower or worker per step (images).')
  args = parser.parse_args()
  # cifar10_input.BATCHES_DIR, spelled out: this script only starts the
  # trainers, and importing cifar10_input would load TensorFlow for nothing.
  if not os.path.isdir(os.path.join(args.data_dir, 'cifar-10-batches-bin')):
    parser.error('no CIFAR-10 data under %s: pass --data_dir.' % args.data_dir)
  work = tempfile.mkdtemp(prefix='benchmark_multi_')
  try:
    rows = [('1 tower', towers(1, args, work)),
            ('2 towers', towers(2, args, work)),
            ('1 localhost worker (+1 ps)', workers(1, args, work)),
            ('2 localhost workers (+1 ps)', workers(2, args, work))]
  finally:
    shutil.rmtree(work, ignore_errors=True)
  machine = bench_common.cpu()
  print('batch %d per tower/worker, %d steps; %s, %d cores (%s)' % (
      args.batch_size, args.steps, machine['cpu'], machine['cores'],
      machine['vector'] or 'no AVX2'))
  print('| configuration | examples/sec | ratio |')
  print('| --- | ---: | ---: |')
  for name, rate in rows:
    print('| %s | %.1f | %.2f |' % (name, rate, rate / rows[0][1]))


if __name__ == '__main__':
  main()
