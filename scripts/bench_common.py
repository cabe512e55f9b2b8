"""What the benchmarks and real-data runs in scripts/ share.

They run the suite's commands as a user does (a subprocess each, so every
run starts clean), read the figures from the commands' own log lines, and
name the machine the figures came from.
"""
import os
import re
import socket
import statistics
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The scripts here import the suite's packages from the checkout.
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)
SHARED_DATASETS = os.path.join(REPO_ROOT, '..', 'shared', 'datasets')
# Keeps TensorFlow's C++ start-up notices out of the figures' output, here
# and in the commands it runs.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ENV = dict(os.environ, PYTHONUNBUFFERED='1')

# cifar10_train.py's (and the tutorial's) log line.
RATE_LINE = re.compile(r': step (\d+), loss = [\d.]+ \(([\d.]+) examples/sec')

# The CPU features that decide the speed of TensorFlow's oneDNN kernels.
VECTOR_FEATURES = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16')


def command(path):
  """The command line that runs the repository's script at path."""
  return [sys.executable, os.path.join(REPO_ROOT, path)]


def run(args, timeout, env=None):
  """Runs a command to its end; returns its stdout, or raises with its output.

  env: variables to set for it, beside the benchmark's own.
  """
  result = subprocess.run(args, capture_output=True, text=True,
                          env=dict(ENV, **(env or {})), timeout=timeout)
  if result.returncode != 0:
    raise RuntimeError('%s failed:\n%s%s' % (' '.join(args), result.stdout,
                                             result.stderr))
  return result.stdout


def rates(log_text):
  """examples/sec of each training log line in log_text."""
  return [float(rate) for _, rate in RATE_LINE.findall(log_text)]


def median_rate(log_text, warmup_lines=5):
  """Median examples/sec after the first warmup_lines log lines."""
  found = rates(log_text)
  # Short runs (tests) keep their last line rather than none.
  found = found[warmup_lines:] or found[-1:]
  return statistics.median(found) if found else float('nan')


def cpu():
  """The CPU's model name, core count and the vector features it has."""
  model, features = 'unknown', set()
  if os.path.exists('/proc/cpuinfo'):
    with open('/proc/cpuinfo') as cpuinfo:
      for line in cpuinfo:
        if line.startswith('model name'):
          model = line.split(':', 1)[1].strip()
        elif line.startswith('flags'):
          features = set(line.split(':', 1)[1].split())
  return dict(cpu=model, cores=os.cpu_count(),
              vector=' '.join(f for f in VECTOR_FEATURES if f in features))


def cpu_times():
  """The machine's CPU time counters since boot (/proc/stat), or None."""
  try:
    with open('/proc/stat') as stat:
      return [int(field) for field in stat.readline().split()[1:]]
  except (OSError, ValueError):
    return None


def steal_percent(before, after):
  """Share of CPU time the hypervisor gave to other guests between two
  cpu_times() readings (percent), or None where the counters are missing."""
  if not before or not after or len(before) < 8:
    return None
  total = sum(after) - sum(before)
  return 100.0 * (after[7] - before[7]) / total if total > 0 else 0.0


def free_ports(count):
  """count free TCP ports on 127.0.0.1."""
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports
