"""Runs every Hypothesis property of outside data to 100,000 examples each.

  python scripts/fuzz_long.py [--examples=100000] [--minutes=60] [--jobs=N]
  python scripts/fuzz_long.py --table       # what the runs so far reached

The properties are the @given tests of tests/test_fuzz_*.py and
tests/test_draw_server.py: CIFAR-10 records and archives, MNIST IDX files,
draw-server requests, image decoding, the bottleneck cache. Each runs in
chunks (one pytest process per chunk, the `long` Hypothesis profile, a seed
of its own so every chunk tries new examples), --jobs chunks at a time,
until it has passed --examples examples, has failed, or Hypothesis has tried
every example its strategy can make. No chunk starts after --minutes
(but each job starts one, so that every run makes progress); the next run
with the same --state_dir goes on from there: the progress is kept in
STATE_DIR/progress.json and the examples that failed in Hypothesis'
example database (STATE_DIR/examples), which replays them first.

It prints a line per chunk and, at the end, a table of examples passed and
failed per property (docs/reliability.md shows one). A failure's output
is kept in STATE_DIR/failures/; each becomes a regular test once fixed.
The TensorFlow-backed properties take tens of milliseconds an example and
the others a few: docs/reliability.md has how long a complete run took.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from tutorials_common import files  # noqa: E402

TEST_FILES = ['tests/test_fuzz_bottlenecks.py', 'tests/test_fuzz_cifar10_input.py',
              'tests/test_fuzz_draw_requests.py',
              'tests/test_fuzz_image_decoding.py', 'tests/test_fuzz_mnist_idx.py',
              'tests/test_draw_server.py']
# A chunk asks a property for N examples; the slowest run a ninth of what
# they are asked (suite_helpers.slow_examples and the scale below), so one
# that passes fewer than a tenth without failing has had Hypothesis stop
# early: its strategy has no example left to make.
EXHAUSTED_FRACTION = 0.1


def parse_args(argv):
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--examples', type=int, default=100000,
                      help='Examples each property must pass (examples).')
  # Small: Hypothesis takes longer per example the more examples one run
  # has tried (docs/reliability.md has the measured figures).
  parser.add_argument('--chunk', type=int, default=1000,
                      help='Examples asked of one pytest process (examples); '
                      'the TensorFlow-backed properties run a third of it.')
  parser.add_argument('--minutes', type=float, default=60.0,
                      help='Time budget: no chunk starts after it, but for the '
                      'first of each job (minutes).')
  parser.add_argument('--jobs', type=int, default=os.cpu_count() or 1,
                      help='Chunks run at once (processes).')
  parser.add_argument('--state_dir', default=os.path.join(REPO_ROOT,
                                                          '.fuzz-long'),
                      help='Where the progress, the example database and '
                      'failures are kept between runs (path).')
  parser.add_argument('--only', default='',
                      help='Run only the properties whose name holds this '
                      'text (empty: all).')
  parser.add_argument('--table', action='store_true',
                      help='Print the table of the runs so far and exit.')
  args = parser.parse_args(argv)
  for name in ('examples', 'chunk', 'jobs'):
    if getattr(args, name) < 1:
      parser.error('--%s must be at least 1.' % name)
  if args.minutes <= 0:
    parser.error('--minutes must be more than 0.')
  return args


def find_properties():
  """The test ids of the Hypothesis properties in TEST_FILES, in order."""
  listing = subprocess.run(
      [sys.executable, '-m', 'pytest', '--collect-only', '-q', '-n', '0',
       '-p', 'no:cacheprovider'] + TEST_FILES, cwd=REPO_ROOT,
      capture_output=True, text=True)
  if listing.returncode != 0:
    sys.exit('fuzz_long: error: cannot list the tests:\n' + listing.stdout[-2000:])
  ids = [line.strip() for line in listing.stdout.splitlines()
         if '::' in line and '[' not in line]
  source = {}
  properties = []
  for test_id in ids:
    path, name = test_id.split('::', 1)
    if path not in source:
      with open(os.path.join(REPO_ROOT, path)) as f:
        source[path] = f.read()
    # A property is a test function with @given among its decorators: the
    # lines right above its def, up to the blank line before them.
    match = re.search(r'^def %s\(' % re.escape(name), source[path], re.M)
    if match:
      above = source[path][:match.start()].split('\n\n')[-1]
      if re.search(r'^@given\(', above, re.M):
        properties.append(test_id)
  return properties


def load_progress(path):
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    return {}
  except (OSError, ValueError) as e:
    sys.exit('fuzz_long: error: cannot read %s (%s): delete it to start over.'
             % (path, e))


def seed_of(test_id, chunk_number):
  digest = hashlib.sha256(('%s#%d' % (test_id, chunk_number)).encode())
  return int(digest.hexdigest()[:8], 16)


def run_chunk(test_id, chunk_number, examples, state_dir):
  """Runs one chunk; returns (examples passed, failed, seconds, output).

  tests/conftest.py counts the examples itself into FUZZ_COUNT_FILE: the
  statistics Hypothesis prints are worded differently from one release to
  the next.
  """
  count_file = os.path.join(state_dir, 'counts-%d.json' % threading.get_ident())
  if os.path.exists(count_file):
    os.remove(count_file)
  env = dict(os.environ, FUZZ_LONG_EXAMPLES=str(examples),
             FUZZ_DATABASE=os.path.join(state_dir, 'examples'),
             FUZZ_COUNT_FILE=count_file, TF_CPP_MIN_LOG_LEVEL='2')
  started = time.time()
  result = subprocess.run(
      [sys.executable, '-m', 'pytest', test_id, '-q', '-n', '0', '-p',
       'no:cacheprovider', '--hypothesis-profile=long',
       '--hypothesis-seed=%d' % seed_of(test_id, chunk_number)],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True)
  seconds = time.time() - started
  try:
    with open(count_file) as f:
      passed = json.load(f)['passed']
    os.remove(count_file)
  except (OSError, ValueError, KeyError):
    passed = 0  # The property never ran (a collection error): a failure.
  failed = 1 if result.returncode != 0 or not passed else 0
  return passed, failed, seconds, result.stdout + result.stderr


def status_of(entry, target):
  if entry.get('failed'):
    return 'FAILED'
  if entry.get('examples', 0) >= target:
    return 'done'
  if entry.get('exhausted'):
    return 'done (every example tried)'
  return 'to go on'


def table(progress, properties, target):
  lines = ['| property | examples passed | failed | minutes | status |',
           '|---|---:|---:|---:|---|']
  for test_id in properties:
    entry = progress.get(test_id, {})
    lines.append('| `%s` | %s | %d | %.1f | %s |' % (
        test_id.replace('tests/', ''), format(entry.get('examples', 0), ','),
        entry.get('failed', 0), entry.get('seconds', 0) / 60.0,
        status_of(entry, target)))
  return '\n'.join(lines)


def main(argv):
  args = parse_args(argv)
  state_dir = os.path.abspath(args.state_dir)
  os.makedirs(os.path.join(state_dir, 'failures'), exist_ok=True)
  progress_path = os.path.join(state_dir, 'progress.json')
  progress = load_progress(progress_path)
  if not progress:
    # A table of zeros is easy to mistake for the project's figures.
    print('fuzz_long: no progress in %s yet: every property starts at 0 '
          '(to go on from the documented run, copy '
          'docs/fuzz_long_progress.json there first).' % progress_path,
          file=sys.stderr)
  properties = [p for p in find_properties() if args.only in p]
  if not properties:
    sys.exit('fuzz_long: error: no property matches --only=%s.' % args.only)
  if args.table:
    print(table(progress, properties, args.examples))
    return 0

  lock = threading.Lock()
  deadline = time.time() + args.minutes * 60
  stopping = threading.Event()  # Ctrl-C: start no more chunks.
  running = set()
  started = 0  # Chunks started: the first --jobs start whatever the time.

  def next_property():
    """The unfinished property with the fewest examples, not running now."""
    nonlocal started
    with lock:
      waiting = [p for p in properties if p not in running and
                 status_of(progress.get(p, {}), args.examples) == 'to go on']
      out_of_time = time.time() > deadline and started >= args.jobs
      if not waiting or out_of_time or stopping.is_set():
        return None, 0
      started += 1
      chosen = min(waiting, key=lambda p: progress.get(p, {}).get('examples',
                                                                  0))
      running.add(chosen)
      entry = progress.setdefault(chosen, {})
      number = entry.get('chunks', 0)
      entry['chunks'] = number + 1
      return chosen, number

  def worker():
    while True:
      test_id, number = next_property()
      if test_id is None:
        return
      entry = progress[test_id]
      # The TensorFlow-backed properties run a third (or a ninth) of what
      # is asked (suite_helpers.py): ask them for more, as the last chunk
      # showed.
      scale = entry.get('scale', 1)
      ask = min(args.chunk, args.examples - entry.get('examples', 0)) * scale
      passed, failed, seconds, output = run_chunk(
          test_id, number, max(ask, 1), state_dir)
      with lock:
        running.discard(test_id)
        exhausted = not failed and passed < EXHAUSTED_FRACTION * ask
        if passed and not failed and not exhausted:
          entry['scale'] = max(1, min(9, int(round(ask / float(passed)))))
        entry['examples'] = entry.get('examples', 0) + passed
        entry['failed'] = entry.get('failed', 0) + failed
        entry['seconds'] = entry.get('seconds', 0) + seconds
        if exhausted:
          entry['exhausted'] = True
        if failed:
          name = re.sub(r'\W+', '_', test_id)
          files.write_atomically(
              os.path.join(state_dir, 'failures', name + '.txt'), output)
        files.write_atomically(progress_path,
                               json.dumps(progress, indent=1, sort_keys=True))
        print('%-90s +%6d passed %s(%.0f s; %s in all)' % (
            test_id, passed, 'FAILED ' if failed else '', seconds,
            format(entry['examples'], ',')))
        sys.stdout.flush()

  print('Fuzzing %d properties to %s examples each, %d at a time, for at most '
        '%.0f minutes; progress in %s.' % (len(properties),
                                            format(args.examples, ','),
                                            args.jobs, args.minutes, state_dir))
  pool = concurrent.futures.ThreadPoolExecutor(args.jobs)
  workers = [pool.submit(worker) for _ in range(args.jobs)]
  try:
    for future in workers:
      future.result()
  except KeyboardInterrupt:
    # The chunks running got the Ctrl-C too; what finished is kept.
    stopping.set()
    pool.shutdown(wait=True)
    print('\nStopped: the progress so far is kept in %s; run the same '
          'command to go on.' % progress_path)
    return 130
  pool.shutdown()
  print()
  print(table(progress, properties, args.examples))
  unfinished = [p for p in properties
                if status_of(progress.get(p, {}), args.examples) == 'to go on']
  failures = [p for p in properties if progress.get(p, {}).get('failed')]
  if failures:
    print('\n%d properties failed: their output is in %s.' % (
        len(failures), os.path.join(state_dir, 'failures')))
    return 1
  if unfinished:
    print('\n%d properties to go on: run the same command again.' %
          len(unfinished))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
