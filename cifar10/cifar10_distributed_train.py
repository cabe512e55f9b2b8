"""Trains CIFAR-10 across machines on TensorFlow's distributed runtime.

Parameter servers hold the variables; each worker trains on its own batches
and the gradients of all workers are aggregated before one synchronous update
(SyncReplicasOptimizer). Worker 0 is the chief: it initialises or restores
the variables and writes the checkpoints and summaries, which cifar10_eval.py
reads as it reads cifar10_train.py's.

Start one process per task, with the same cluster description everywhere
(here one parameter server and two workers on one machine):

  python cifar10_distributed_train.py --ps_hosts=localhost:2222 \
      --worker_hosts=localhost:2223,localhost:2224 --job_name=ps --task_index=0
  python cifar10_distributed_train.py --ps_hosts=localhost:2222 \
      --worker_hosts=localhost:2223,localhost:2224 --job_name=worker --task_index=0
  python cifar10_distributed_train.py --ps_hosts=localhost:2222 \
      --worker_hosts=localhost:2223,localhost:2224 --job_name=worker --task_index=1

or leave the cluster flags out and set TF_CONFIG, e.g.
  TF_CONFIG='{"cluster": {"ps": ["h0:2222"], "worker": ["h1:2222", "h2:2222"]},
              "task": {"type": "worker", "index": 0}}'

A worker waits at most --ps_wait_secs for the parameter servers and then stops
with an error naming the one it could not reach. A worker that dies can be
started again with the same flags: it rejoins the running job (a restarted
chief restores the latest checkpoint). Parameter servers run until killed.

What to expect: accuracy as cifar10_train.py's per epoch; each step consumes
batch_size x workers images. The documentation (docs/performance.md, Towers
and workers) compares one and two localhost workers.
"""
import json
import os
import socket
import sys
import time

if __name__ == '__main__':
  # Run as a file or with python -m: start as the console script does, with
  # TensorFlow loaded quietly before the imports below (cli_support/launch.py).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from cli_support import launch
  sys.exit(launch.start('cifar10.cifar10_distributed_train'))

from cli_support import entry
from tutorials_common.errors import UsageError
from absl import flags
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import cifar10_flags
from cifar10 import training

FLAGS = flags.FLAGS


class ClusterError(UsageError):
  """The cluster description is incomplete or a parameter server is unreachable."""


def define_flags():
  cifar10_flags.define_trainer_flags()
  flags.DEFINE_string('ps_hosts', '',
                      'Comma-separated host:port list of the parameter '
                      'servers (or set TF_CONFIG).')
  flags.DEFINE_string('worker_hosts', '',
                      'Comma-separated host:port list of the workers.')
  flags.DEFINE_string('job_name', '', "This task's job: 'ps' or 'worker'.")
  flags.DEFINE_integer('task_index', 0, "This task's index within its job.",
                       lower_bound=0)
  flags.DEFINE_integer('ps_wait_secs', 60,
                       'How long a worker waits for the parameter servers '
                       'before giving up (seconds).', lower_bound=0)


def cluster_from_flags_or_env(ps_hosts, worker_hosts, job_name, task_index,
                              tf_config):
  """Returns (cluster dict, job name, task index) from flags, else TF_CONFIG."""
  if ps_hosts or worker_hosts or job_name:
    cluster = {'ps': [h for h in ps_hosts.split(',') if h],
               'worker': [h for h in worker_hosts.split(',') if h]}
  elif tf_config:
    try:
      config = json.loads(tf_config)
      cluster = {job: list(config['cluster'].get(job, []))
                 for job in ('ps', 'worker')}
      job_name = config['task']['type']
      task_index = int(config['task'].get('index', 0))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
      raise ClusterError('TF_CONFIG is not a valid cluster description (%s): '
                         'it needs {"cluster": {"ps": [...], "worker": [...]}, '
                         '"task": {"type": ..., "index": ...}}.' % e)
  else:
    raise ClusterError('No cluster given: set --ps_hosts, --worker_hosts, '
                       '--job_name and --task_index, or TF_CONFIG.')
  if not cluster['ps'] or not cluster['worker']:
    raise ClusterError('The cluster needs at least one parameter server and '
                       'one worker (--ps_hosts and --worker_hosts).')
  if job_name not in ('ps', 'worker'):
    raise ClusterError("--job_name must be 'ps' or 'worker', not %r." %
                       job_name)
  if not 0 <= task_index < len(cluster[job_name]):
    raise ClusterError('--task_index=%d, but the %s job has %d task(s).' %
                       (task_index, job_name, len(cluster[job_name])))
  return cluster, job_name, task_index


def wait_for_parameter_servers(ps_hosts, timeout_secs, poll_secs=0.5):
  """Waits until every parameter server accepts connections, or raises.

  Tries each every poll_secs, for timeout_secs in all.
  """
  deadline = time.time() + timeout_secs
  for index, address in enumerate(ps_hosts):
    host, port = address.rsplit(':', 1)
    while True:
      try:
        socket.create_connection((host, int(port)), timeout=2).close()
        break
      except (OSError, ValueError):
        if time.time() >= deadline:
          raise ClusterError(
              'Parameter server ps:%d at %s did not answer within %d s: start '
              'it with --job_name=ps --task_index=%d, or check --ps_hosts.' %
              (index, address, timeout_secs, index))
        time.sleep(poll_secs)


class SyncReplicas(object):
  """Synchronous training over num_workers workers, for cifar10.train.

  train() hands wrap() the schedule's optimizer and moving averages: each
  step then aggregates the gradients of every worker before one update,
  after which the optimizer also moves the moving averages of the trainable
  variables (which evaluation restores). hook() is the session hook the
  loop needs for it.
  """

  def __init__(self, num_workers):
    self.num_workers = num_workers
    self.optimizer = None

  def wrap(self, optimizer, moving_averages):
    self.optimizer = tf.train.SyncReplicasOptimizer(
        optimizer,
        replicas_to_aggregate=self.num_workers,
        total_num_replicas=self.num_workers,
        variable_averages=moving_averages,
        variables_to_average=tf.trainable_variables())
    return self.optimizer

  def hook(self, is_chief):
    return self.optimizer.make_session_run_hook(is_chief, num_tokens=0)


def train_worker(server, cluster, task_index):
  """Builds the replicated graph and trains until --max_steps."""
  num_workers = len(cluster['worker'])
  is_chief = task_index == 0
  worker_device = '/job:worker/task:%d' % task_index
  with tf.Graph().as_default():
    with tf.device(tf.train.replica_device_setter(
        worker_device=worker_device, cluster=tf.train.ClusterSpec(cluster))):
      global_step = tf.train.get_or_create_global_step()
      schedule, last_step = cifar10_flags.schedule_from_flags(
          FLAGS.batch_size * num_workers)
      with tf.device(worker_device + '/cpu:0'):
        images, labels = cifar10.distorted_inputs(
            FLAGS.data_dir, FLAGS.batch_size, schedule)
      precision = cifar10_flags.precision_from_flags()
      logits = cifar10.logits(images, precision)
      loss = cifar10.loss(logits, labels, schedule.label_smoothing)
      sync = SyncReplicas(num_workers)
      train_op = cifar10.train(loss, global_step, cifar10.TrainSettings(
          schedule=schedule, precision=precision, sync_replicas=sync))
    config = tf.ConfigProto(
        allow_soft_placement=True,
        # Talk to the parameter servers and this worker only, so a worker
        # can start (or restart) without waiting for the others.
        device_filters=['/job:ps', worker_device])
    training.run_training(
        train_op, loss, FLAGS.batch_size, cifar10_flags.loop_settings(),
        last_step=last_step, config=config, master=server.target,
        is_chief=is_chief,
        extra_hooks=[sync.hook(is_chief)])


def main(argv=None):  # pylint: disable=unused-argument
  cluster, job_name, task_index = cluster_from_flags_or_env(
      FLAGS.ps_hosts, FLAGS.worker_hosts, FLAGS.job_name, FLAGS.task_index,
      os.environ.get('TF_CONFIG', ''))
  if job_name == 'worker':
    wait_for_parameter_servers(cluster['ps'], FLAGS.ps_wait_secs)
  server = tf.train.Server(tf.train.ClusterSpec(cluster), job_name=job_name,
                           task_index=task_index)
  if job_name == 'ps':
    print('Parameter server %d listening on %s.' %
          (task_index, cluster['ps'][task_index]))
    sys.stdout.flush()
    server.join()
    return
  training.train_main(lambda: train_worker(server, cluster, task_index),
                      FLAGS.train_dir, FLAGS.data_dir,
                      # Only the chief may delete the shared checkpoints.
                      fresh=FLAGS.fresh and task_index == 0)


def run():
  entry.run(main, define_flags)

