"""Trains CIFAR-10 while killing it with SIGKILL at random moments.

  python scripts/soak_kill.py --data_dir=../shared/datasets/cifar10 \
      [--kills=50] [--max_steps=5000] [--work_dir=/tmp/cifar10_soak] \
      [-- extra cifar10_train.py flags]

cifar10_train.py runs with a checkpoint every --save_checkpoint_secs and
cifar10_eval.py beside it, as a user runs them. Each life of the trainer is
killed (SIGKILL: no handler runs, nothing is flushed) a random
--min_life_secs to --max_life_secs after its first logged step, and started
again with the same command, --kills times; then it trains to --max_steps
undisturbed. After every kill
the latest checkpoint is read back whole, as cifar10_eval would.

It reports the kills survived, the steps lost per kill (the last step the
trainer logged before the kill, less the step it resumed from: at most one
checkpoint interval of steps, to within --log_frequency), the checkpoints
that could not be read (must be 0), whether the evaluator beside it kept
going, and the final precision @ 1 against an unkilled run of the same
--max_steps (skipped with --no_compare). The documentation (docs/reliability.md)
shows one run. Exits 1 when a kill lost work or a checkpoint could not be
read.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

import bench_common  # First: it puts the repository on sys.path.
from tutorials_common import console
from tutorials_common import files

# cifar10_input.BATCHES_DIR, restated: importing cifar10_input loads
# TensorFlow, which main() loads quietly first.
BATCHES_DIR = 'cifar-10-batches-bin'

RESUME_LINE = re.compile(r'Resuming from \S+ at step (\d+)')
STEP_LINE = re.compile(r': step (\d+), loss = [\d.]+ \(([\d.]+) examples/sec; '
                       r'([\d.]+) sec/batch\)')
PRECISION_LINE = re.compile(r'precision @ 1 = ([\d.]+)')
# Longest wait for a trainer's first step (start-up, the queue filling).
STARTUP_TIMEOUT_SECS = 300


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default=os.path.join(
      bench_common.SHARED_DATASETS, 'cifar10'),
                      help='Folder holding %s/ (path).' % BATCHES_DIR)
  parser.add_argument('--work_dir', default='/tmp/cifar10_soak',
                      help='Where the runs go; deleted first (path).')
  parser.add_argument('--kills', type=int, default=50,
                      help='SIGKILLs to survive (kills).')
  parser.add_argument('--max_steps', type=int, default=5000,
                      help='The step both runs train to (steps).')
  parser.add_argument('--save_checkpoint_secs', type=int, default=5,
                      help='Seconds between checkpoints (seconds).')
  parser.add_argument('--min_life_secs', type=float, default=0.0,
                      help='Shortest time before a kill, counted from the '
                      "life's first logged step (seconds).")
  parser.add_argument('--max_life_secs', type=float, default=12.0,
                      help='Longest time before a kill (seconds).')
  parser.add_argument('--log_frequency', type=int, default=10,
                      help="The trainer's steps between log lines (steps).")
  parser.add_argument('--eval_examples', type=int, default=10000,
                      help='Test images the final evaluations score (images).')
  parser.add_argument('--beside_examples', type=int, default=1000,
                      help='Test images the evaluator beside the killed '
                      'trainer scores per checkpoint (images).')
  parser.add_argument('--no_compare', dest='compare', action='store_false',
                      help='Skip the unkilled run of the same length.')
  parser.add_argument('--seed', type=int, default=0,
                      help='Seed of the moments of the kills.')
  parser.add_argument('--json', default=None,
                      help='Also write the figures to this JSON file (path).')
  parser.add_argument('train_flags', nargs='*',
                      help='Extra flags for cifar10_train.py, after --.')
  args = parser.parse_args(argv)
  if args.kills < 0 or args.max_steps < 1 or args.save_checkpoint_secs < 1:
    parser.error('--kills must be 0 or more, --max_steps and '
                 '--save_checkpoint_secs at least 1.')
  if not 0 <= args.min_life_secs <= args.max_life_secs:
    parser.error('--min_life_secs must be 0 or more and at most '
                 '--max_life_secs.')
  return args


class Life(object):
  """One trainer process: what it logged, read as it runs."""

  def __init__(self, args, train_dir, log):
    self.resumed_from = None
    self.last_step = None
    self.training = threading.Event()  # Set at its first logged step.
    self.seconds_per_step = []
    self.log = log
    self.process = subprocess.Popen(
        bench_common.command('cifar10/cifar10_train.py') +
        ['--data_dir', args.data_dir, '--train_dir', train_dir,
         '--max_steps', str(args.max_steps),
         '--save_checkpoint_secs', str(args.save_checkpoint_secs),
         '--log_frequency', str(args.log_frequency)] + args.train_flags,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=bench_common.ENV)
    self.reader = threading.Thread(target=self._read, daemon=True)
    self.reader.start()

  def _read(self):
    for line in self.process.stdout:
      self.log.write(line)
      resumed = RESUME_LINE.search(line)
      if resumed:
        self.resumed_from = int(resumed.group(1))
      step = STEP_LINE.search(line)
      if step:
        self.last_step = int(step.group(1))
        self.seconds_per_step.append(float(step.group(3)))
        self.training.set()
    self.training.set()  # Its output ended: it is not starting any more.

  def kill(self):
    self.process.send_signal(signal.SIGKILL)
    self.process.wait()
    self.reader.join()

  def wait(self):
    status = self.process.wait()
    self.reader.join()
    return status


def find_checkpoint(train_dir):
  """The latest complete checkpoint in train_dir, or None."""
  from tutorials_common import checkpoints  # pylint: disable=g-import-not-at-top
  return checkpoints.find_checkpoint(train_dir)


def readable(checkpoint):
  """Whether every tensor of checkpoint reads back, as a restore reads it."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  try:
    reader = tf.train.NewCheckpointReader(checkpoint)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
    return True
  except Exception:  # pylint: disable=broad-except
    return False


def evaluate_once(args, train_dir, eval_dir):
  output = bench_common.run(
      bench_common.command('cifar10/cifar10_eval.py') +
      ['--data_dir', args.data_dir, '--checkpoint_dir', train_dir,
       '--eval_dir', eval_dir, '--run_once',
       '--num_examples', str(args.eval_examples)] + _eval_flags(args),
      timeout=1800)
  return float(PRECISION_LINE.findall(output)[-1])


def _eval_flags(args):
  """The trainer's extra flags that evaluation needs too."""
  return [flag for flag in args.train_flags
          if flag.split('=')[0] in ('--precision', '--use_fp16')]


def soak(args, out=sys.stdout):
  """Runs the killed training (and the unkilled one); returns the figures."""
  rng = random.Random(args.seed)
  shutil.rmtree(args.work_dir, ignore_errors=True)
  train_dir = os.path.join(args.work_dir, 'train')
  os.makedirs(train_dir)
  log = open(os.path.join(args.work_dir, 'train.log'), 'w')
  eval_log = open(os.path.join(args.work_dir, 'eval.log'), 'w')
  evaluator = subprocess.Popen(
      bench_common.command('cifar10/cifar10_eval.py') +
      ['--data_dir', args.data_dir, '--checkpoint_dir', train_dir,
       '--eval_dir', os.path.join(args.work_dir, 'eval_beside'),
       '--eval_interval_secs', '1', '--num_examples',
       str(args.beside_examples)] + _eval_flags(args),
      stdout=eval_log, stderr=subprocess.STDOUT, env=bench_common.ENV)
  started = time.time()
  lost, unreadable, seconds_per_step, kills = [], 0, [], 0
  # The last step a killed life logged, not yet matched with the step the
  # next life resumed from.
  pending = None
  status = None

  def matched(life):
    """Records the steps lost by the kill before life, once life says where
    it resumed (a life killed while starting says nothing: the next does)."""
    nonlocal pending
    resumed = life.resumed_from
    if resumed is None and life.last_step is not None:
      resumed = 0  # It logged a step without resuming: it started afresh.
    if pending is not None and resumed is not None:
      lost.append(max(0, pending - resumed))
      pending = None
    if life.last_step is not None:
      pending = life.last_step

  try:
    while kills < args.kills:
      life = Life(args, train_dir, log)
      # A random moment once it trains: between steps, inside a step, or
      # inside a checkpoint's save.
      life.training.wait(STARTUP_TIMEOUT_SECS)
      time.sleep(rng.uniform(args.min_life_secs, args.max_life_secs))
      if life.process.poll() is not None:
        status = life.wait()  # At --max_steps before all the kills.
        matched(life)
        break
      life.kill()
      kills += 1
      seconds_per_step += life.seconds_per_step
      matched(life)
      checkpoint = find_checkpoint(train_dir)
      if checkpoint and not readable(checkpoint):
        unreadable += 1
        out.write('UNREADABLE after kill %d: %s\n' % (kills, checkpoint))
      out.write('kill %d: last logged step %s; latest checkpoint %s\n' % (
          kills, life.last_step, checkpoint and os.path.basename(checkpoint)))
      out.flush()
    if status is None:
      final = Life(args, train_dir, log)
      status = final.wait()
      matched(final)
      seconds_per_step += final.seconds_per_step
  finally:
    evaluator.poll()
    evaluator_alive = evaluator.returncode is None
    if evaluator_alive:
      evaluator.send_signal(signal.SIGINT)
      try:
        evaluator.wait(30)
      except subprocess.TimeoutExpired:
        evaluator.kill()
    log.close()
    eval_log.close()
  killed_minutes = (time.time() - started) / 60
  with open(os.path.join(args.work_dir, 'eval.log')) as f:
    evaluated = len(PRECISION_LINE.findall(f.read()))
  step_secs = statistics.median(seconds_per_step) if seconds_per_step else 0
  figures = dict(
      cpu=bench_common.cpu(), kills=kills, kills_asked=args.kills,
      trainer_status=status, max_steps=args.max_steps,
      save_checkpoint_secs=args.save_checkpoint_secs,
      steps_per_checkpoint=(args.save_checkpoint_secs / step_secs
                            if step_secs else None),
      steps_lost=lost, unreadable_checkpoints=unreadable,
      evaluator_kept_going=evaluator_alive, checkpoints_evaluated=evaluated,
      killed_run_minutes=killed_minutes, train_flags=args.train_flags)
  figures['killed_precision'] = evaluate_once(
      args, train_dir, os.path.join(args.work_dir, 'eval_final'))
  if args.compare:
    unkilled_dir = os.path.join(args.work_dir, 'unkilled')
    with open(os.path.join(args.work_dir, 'unkilled.log'), 'w') as f:
      figures['unkilled_status'] = Life(
          args, unkilled_dir, f).wait()
    figures['unkilled_precision'] = evaluate_once(
        args, unkilled_dir, os.path.join(args.work_dir, 'eval_unkilled'))
  return figures


def report(figures, args):
  lost = figures['steps_lost']
  interval = figures['steps_per_checkpoint']
  lines = ['Machine: %(cpu)s, %(cores)d cores (%(vector)s).' % figures['cpu'],
           'Kills survived: %d of %d asked (SIGKILL, %g to %g s into each '
           'life\'s training); the trainer then ran to step %d (status %d).' % (
               figures['kills'], figures['kills_asked'], args.min_life_secs,
               args.max_life_secs, figures['max_steps'],
               figures['trainer_status'])]
  if lost:
    lines.append('Steps lost per kill: median %d, most %d; one checkpoint '
                 'interval (%d s) is %.0f steps, logged every %d.' % (
                     statistics.median(lost), max(lost),
                     figures['save_checkpoint_secs'], interval or 0,
                     args.log_frequency))
  lines.append('Checkpoints unreadable after a kill: %d. Evaluator beside it: '
               '%s, %d checkpoints evaluated.' % (
                   figures['unreadable_checkpoints'],
                   'kept going' if figures['evaluator_kept_going'] else
                   'STOPPED', figures['checkpoints_evaluated']))
  line = 'Final precision @ 1: %.3f killed' % figures['killed_precision']
  if 'unkilled_precision' in figures:
    line += ', %.3f unkilled (the same %d steps)' % (
        figures['unkilled_precision'], figures['max_steps'])
  lines.append(line + '.')
  return '\n'.join(lines)


def failures(figures, args):
  """What went wrong, if anything: [] when the soak passed."""
  wrong = []
  if figures['unreadable_checkpoints']:
    wrong.append('%d checkpoints unreadable' % figures['unreadable_checkpoints'])
  if figures['trainer_status'] != 0:
    wrong.append('the last trainer exited %d' % figures['trainer_status'])
  if not figures['evaluator_kept_going']:
    wrong.append('the evaluator stopped')
  limit = (figures['steps_per_checkpoint'] or 0) + args.log_frequency
  over = [n for n in figures['steps_lost'] if n > limit]
  if over:
    wrong.append('%d kills lost more than a checkpoint interval (%s steps)'
                 % (len(over), ', '.join(map(str, over))))
  return wrong


def main(argv=None):
  args = parse_args(argv)
  console.quiet_tensorflow()
  if not os.path.isdir(os.path.join(args.data_dir, BATCHES_DIR)):
    print('SKIPPED: no CIFAR-10 data at %s; pass --data_dir=<folder holding '
          '%s/>.' % (os.path.join(args.data_dir, BATCHES_DIR), BATCHES_DIR))
    return 0
  try:
    figures = soak(args)
  except KeyboardInterrupt:
    print('\nStopped (Ctrl-C): the runs so far are in %s.' % args.work_dir)
    return 130
  print(report(figures, args))
  if args.json:
    files.write_atomically(args.json, json.dumps(figures, indent=1) + '\n')
  wrong = failures(figures, args)
  if wrong:
    print('FAILED: ' + '; '.join(wrong) + '.')
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
