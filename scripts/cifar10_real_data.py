"""Trains CIFAR-10 on the real data with evaluation alongside, and prints the curve.

Runs cifar10_train.py for --minutes (or until --max_steps) with a checkpoint
every --checkpoint_minutes, and cifar10_eval.py beside it scoring each
checkpoint on the 10,000 test images, as a user runs the tutorial. Prints one
row per evaluated checkpoint: step, minutes of training, precision @ 1, and
the trainer's examples/sec over that stretch; writes the same as CSV.

  python scripts/cifar10_real_data.py --data_dir=../shared/datasets/cifar10 \
      --minutes=30 --work_dir=/tmp/cifar10_real

Compare the curve with docs/performance.md (Time to accuracy) at the same
number of epochs, not minutes, since machines differ in speed: far below it
means the model or the pipeline is wrong. Exits with a message and status 0
when the data is absent.
"""
import argparse
import csv
import os
import re
import subprocess
import sys
import time
from datetime import datetime

import bench_common  # First: it puts the repository on sys.path.
from cifar10.cifar10_eval import CROPS_TAG
from cifar10.cifar10_input import BATCHES_DIR, NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN

STEP_LINE = re.compile(r'^([\d-]+ [\d:.]+): step (\d+), loss = [\d.]+ '
                       r'\(([\d.]+) examples/sec', re.M)


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default=os.path.join(
      bench_common.SHARED_DATASETS, 'cifar10'),
                      help='Folder holding cifar-10-batches-bin/.')
  parser.add_argument('--work_dir', default='/tmp/cifar10_real',
                      help='Where train/ and eval/ go (deleted first).')
  parser.add_argument('--minutes', type=float, default=30,
                      help='Training time (minutes).')
  parser.add_argument('--max_steps', type=int, default=1000000,
                      help='Stop training at this step (steps).')
  parser.add_argument('--checkpoint_minutes', type=float, default=5,
                      help='Minutes between checkpoints, each evaluated.')
  parser.add_argument('--eval_flip', action='store_true',
                      help='Evaluate with cifar10_eval.py --eval_flip.')
  parser.add_argument('--eval_crops', choices=['1', '5'], default='1',
                      help='cifar10_eval.py --eval_crops (crops): with 5, the '
                      'curve has a column of the five-crop precision beside '
                      'the central crop\'s.')
  parser.add_argument('--csv', default=None,
                      help='CSV file for the curve (default work_dir/curve.csv).')
  parser.add_argument('--report_only', action='store_true',
                      help='Print the curve of the run already in --work_dir.')
  parser.add_argument('train_flags', nargs='*',
                      help='Extra flags for cifar10_train.py, after --.')
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  if args.report_only:
    with open(os.path.join(args.work_dir, 'started.txt')) as f:
      return report(args, float(f.read()))
  batches = os.path.join(args.data_dir, BATCHES_DIR)
  if not os.path.isdir(batches):
    print('SKIPPED: no real CIFAR-10 data at %s; pass --data_dir=<folder '
          'holding %s/>.' % (batches, BATCHES_DIR))
    return 0
  train_dir = os.path.join(args.work_dir, 'train')
  eval_dir = os.path.join(args.work_dir, 'eval')
  os.makedirs(args.work_dir, exist_ok=True)
  train_log = open(os.path.join(args.work_dir, 'train.log'), 'w')
  eval_log = open(os.path.join(args.work_dir, 'eval.log'), 'w')
  trainer = subprocess.Popen(
      bench_common.command('cifar10/cifar10_train.py') +
      ['--data_dir', args.data_dir, '--train_dir', train_dir, '--fresh',
       '--max_steps', str(args.max_steps),
       '--save_checkpoint_secs', str(int(args.checkpoint_minutes * 60))] +
      args.train_flags, stdout=train_log, stderr=subprocess.STDOUT,
      env=bench_common.ENV)
  started = time.time()
  with open(os.path.join(args.work_dir, 'started.txt'), 'w') as f:
    f.write('%.3f\n' % started)
  evaluator = subprocess.Popen(
      bench_common.command('cifar10/cifar10_eval.py') +
      ['--data_dir', args.data_dir, '--checkpoint_dir', train_dir,
       '--eval_dir', eval_dir, '--eval_interval_secs', '0',
       '--eval_flip=%s' % args.eval_flip, '--eval_crops', args.eval_crops],
      stdout=eval_log, stderr=subprocess.STDOUT, env=bench_common.ENV)
  try:
    # A little past --minutes, so the checkpoint due at that time is written.
    deadline = started + args.minutes * 60 + 30
    memory_log = open(os.path.join(args.work_dir, 'memory.csv'), 'w')
    memory_log.write('seconds,rss_mib\n')
    while trainer.poll() is None and time.time() < deadline:
      time.sleep(5)
      rss = resident_mib(trainer.pid)
      if rss is not None:
        memory_log.write('%.0f,%.1f\n' % (time.time() - started, rss))
        memory_log.flush()
    if trainer.poll() is None:
      trainer.kill()  # Checkpoints are atomic: the last one stays readable.
    trainer.wait()
    # Give the evaluator time to score the last checkpoint.
    time.sleep(45)
  finally:
    for process in (trainer, evaluator):
      if process.poll() is None:
        process.kill()
      process.wait()
  return report(args, started)


def resident_mib(pid):
  """The resident memory of a running process (MiB), or None once it ended."""
  try:
    with open('/proc/%d/status' % pid) as f:
      for line in f:
        if line.startswith('VmRSS:'):
          return int(line.split()[1]) / 1024.0
  except (IOError, OSError):
    return None
  return None


def evaluated(eval_dir, tags=('Precision @ 1', CROPS_TAG)):
  """{tag: {step: precision}} of each checkpoint cifar10_eval.py scored,
  from the summaries it wrote under tags, in one pass over its events."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel('ERROR')  # summary_iterator's deprecation note.
  points = {tag: {} for tag in tags}
  for path in sorted(tf.io.gfile.glob(os.path.join(eval_dir, 'events.*'))):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag in points:
          points[value.tag][event.step] = value.simple_value
  return points


def report(args, started):
  """Joins the logs into rows: step, minutes, epochs, precision, examples/sec,
  and the trainer's resident memory."""
  train_text = open(os.path.join(args.work_dir, 'train.log')).read()
  # (step, minutes since the trainer started, examples/sec)
  steps = [(int(step), (datetime.strptime(stamp, '%Y-%m-%d %H:%M:%S.%f')
                        .timestamp() - started) / 60, float(rate))
           for stamp, step, rate in STEP_LINE.findall(train_text)]
  batch_size = 128
  for i, flag in enumerate(args.train_flags):
    if flag.startswith('--batch_size='):
      batch_size = int(flag.split('=', 1)[1])
    elif flag == '--batch_size':
      batch_size = int(args.train_flags[i + 1])
  memory = []  # (minutes, resident MiB)
  memory_path = os.path.join(args.work_dir, 'memory.csv')
  if os.path.exists(memory_path):
    with open(memory_path) as f:
      memory = [(float(r['seconds']) / 60, float(r['rss_mib']))
                for r in csv.DictReader(f)]
  rows = []
  eval_dir = os.path.join(args.work_dir, 'eval')
  points = evaluated(eval_dir)
  five_crops = points[CROPS_TAG]
  for step, precision in sorted(points['Precision @ 1'].items()):
    before = [s for s in steps if s[0] <= step] or [(0, 0.0, 0.0)]
    rates = [r for _, _, r in before[-30:]]
    minutes = before[-1][1]
    rss = [m for t, m in memory if t <= minutes + 0.1] or [0.0]
    rows.append(dict(step=step, minutes=round(minutes, 1),
                     epochs=round(step * batch_size /
                                  NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN, 1),
                     precision=round(float(precision), 4),
                     examples_per_sec=round(sum(rates) / len(rates), 1),
                     rss_mib=round(rss[-1])))
    if five_crops:
      # Empty where the evaluator wrote no five-crop figure for the step.
      rows[-1]['precision_5_crops'] = (round(float(five_crops[step]), 4)
                                       if step in five_crops else '')
  minutes_trained = steps[-1][1] if steps else 0
  csv_path = args.csv or os.path.join(args.work_dir, 'curve.csv')
  with open(csv_path, 'w') as f:
    writer = csv.DictWriter(f, ['step', 'minutes', 'epochs', 'precision',
                                'examples_per_sec', 'rss_mib'] +
                            (['precision_5_crops'] if five_crops else []))
    writer.writeheader()
    writer.writerows(rows)
  print('| step | minutes | epochs | precision @ 1 | examples/sec | '
        'resident MiB |' + (' 5 crops |' if five_crops else ''))
  print('| ---: | ---: | ---: | ---: | ---: | ---: |' +
        (' ---: |' if five_crops else ''))
  for row in rows:
    crops = row.get('precision_5_crops', '')
    print('| {step} | {minutes} | {epochs} | {precision:.3f} | '
          '{examples_per_sec} | {rss_mib} |'.format(**row) +
          (' %s |' % (crops if crops == '' else '%.3f' % crops)
           if five_crops else ''))
  print('trained %.1f minutes; curve written to %s' % (minutes_trained,
                                                       csv_path))
  return 0 if rows else 1


if __name__ == '__main__':
  sys.exit(main())
