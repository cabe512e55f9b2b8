"""cifar10_distributed_train: cluster description, a missing parameter server,
and a real localhost cluster (1 parameter server, 2 workers)."""
import os
import re
import subprocess
import sys
import time

import pytest
import tensorflow.compat.v1 as tf

from cifar10 import cifar10_distributed_train as dist
from cifar10 import cifar10_eval
import cifar_fixtures
from cifar_fixtures import REPO_ROOT
from scripts import bench_common

DIST = os.path.join('cifar10', 'cifar10_distributed_train.py')
STEP_LINE = re.compile(r': step (\d+), loss = ([\d.]+) \(')


def test_cluster_from_flags_and_from_tf_config():
  cluster, job, index = dist.cluster_from_flags_or_env(
      'h0:1', 'h1:1,h2:1', 'worker', 1, '')
  assert cluster == {'ps': ['h0:1'], 'worker': ['h1:1', 'h2:1']}
  assert (job, index) == ('worker', 1)
  tf_config = ('{"cluster": {"ps": ["a:1"], "worker": ["b:1", "c:1"]}, '
               '"task": {"type": "ps", "index": 0}}')
  assert dist.cluster_from_flags_or_env('', '', '', 0, tf_config) == (
      {'ps': ['a:1'], 'worker': ['b:1', 'c:1']}, 'ps', 0)


@pytest.mark.parametrize('args, message', [
    (('', '', '', 0, ''), 'No cluster given'),
    (('', '', '', 0, '{"cluster": 3}'), 'TF_CONFIG is not a valid'),
    (('h0:1', '', 'worker', 0, ''), 'at least one parameter server'),
    (('h0:1', 'h1:1', 'chief', 0, ''), "must be 'ps' or 'worker'"),
    (('h0:1', 'h1:1', 'worker', 1, ''), 'the worker job has 1 task'),
])
def test_bad_cluster_descriptions_are_clear_errors(args, message):
  with pytest.raises(dist.ClusterError, match=message):
    dist.cluster_from_flags_or_env(*args)


def test_missing_parameter_server_is_an_error_after_a_bounded_wait():
  ps_port, = bench_common.free_ports(1)
  started = time.time()
  with pytest.raises(dist.ClusterError,
                     match='Parameter server ps:0 at localhost:%d did not '
                     'answer within 1 s' % ps_port):
    dist.wait_for_parameter_servers(['localhost:%d' % ps_port], 1,
                                    poll_secs=0.1)
  assert 1 <= time.time() - started < 10


CLUSTER_STEPS = 50


def test_localhost_cluster_trains_survives_a_worker_restart_and_evaluates(
    tmp_path):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data', records_per_file=60)
  train_dir = str(tmp_path / 'train')
  ports = bench_common.free_ports(3)
  common = ['--ps_hosts', 'localhost:%d' % ports[0],
            '--worker_hosts', 'localhost:%d,localhost:%d' % tuple(ports[1:]),
            '--data_dir', data_dir, '--train_dir', train_dir,
            # The fast schedule, ending at step CLUSTER_STEPS (two workers of
            # 32): the tutorial's constant rate of 0.1 is chaotic on data
            # this small, and its loss may not fall in time (conftest's
            # CIFAR_TRAINED_STEPS).
            '--batch_size', '32', '--schedule=fast', '--fast_epochs',
            repr(CLUSTER_STEPS * 64 / 50000), '--ps_wait_secs', '30']
  env = dict(os.environ, PYTHONUNBUFFERED='1', TF_CPP_MIN_LOG_LEVEL='2')
  processes = []

  def start(job, index, log_name):
    log = open(str(tmp_path / log_name), 'w')
    process = subprocess.Popen(
        [sys.executable, DIST] + common + ['--job_name', job,
                                           '--task_index', str(index)],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    processes.append(process)
    return process

  def steps_in(log_name):
    text = open(str(tmp_path / log_name)).read()
    return [(int(s), float(l)) for s, l in STEP_LINE.findall(text)]

  try:
    start('ps', 0, 'ps.log')
    chief = start('worker', 0, 'worker0.log')
    worker1 = start('worker', 1, 'worker1.log')
    deadline = time.time() + 150
    while time.time() < deadline and not [
        s for s, _ in steps_in('worker1.log') if s >= 20]:
      time.sleep(0.5)
    assert steps_in('worker1.log'), open(str(tmp_path / 'worker1.log')).read()
    worker1.kill()
    worker1.wait()
    restarted = start('worker', 1, 'worker1_again.log')
    chief.wait(timeout=240)
    restarted.wait(timeout=60)
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
      process.wait()
  assert chief.returncode == 0, open(str(tmp_path / 'worker0.log')).read()
  for log_name in ('worker0.log', 'worker1_again.log'):
    # Nothing of the token queue runner that outlives the chief's session.
    assert 'Traceback' not in open(str(tmp_path / log_name)).read(), log_name
  chief_steps = steps_in('worker0.log')
  # (One batch's loss is too noisy to compare; the precision below shows
  # that the cluster learnt.)
  assert chief_steps[-1][0] == CLUSTER_STEPS
  assert steps_in('worker1_again.log'), 'the restarted worker did not train'
  assert tf.train.latest_checkpoint(train_dir).endswith('-%d' % CLUSTER_STEPS)
  evaluator = cifar10_eval.Evaluator('test', data_dir, 60, 60)
  precision, step = evaluator.evaluate(tf.train.latest_checkpoint(train_dir))
  assert step == CLUSTER_STEPS
  assert precision > 0.5  # Chance is 0.1.
