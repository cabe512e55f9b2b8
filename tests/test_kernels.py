"""The fused kernels: their numbers against TensorFlow's, where the network
uses them, and their build: cached, atomic, checked in a process of its own
before any command loads them, chosen by measurement, and a clear fallback
when they cannot be used."""
import functools
import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import kernels
from cifar10.kernels import __main__ as kernels_command
from cifar10.kernels import build
from cifar10.kernels import lrn_ops
from cifar_fixtures import REPO_ROOT


def fused_lrn(x, depth_radius, bias, alpha, beta, name=None):
  """The fused kernel's LRN, with the library the suite built."""
  ops, _ = kernels.library()
  return lrn_ops.fused_lrn(ops, x, depth_radius, bias, alpha, beta, name)

LRN_SETTINGS = dict(bias=1.0, alpha=0.001 / 9.0)
needs_compiler = pytest.mark.skipif(
    not build.has_compiler(),
    reason='no C++ compiler here to build the fused LRN kernel')


def _lrn_and_gradient(function, x_value, upstream, depth_radius, beta,
                      dtype=tf.float32):
  """function's LRN of x and its gradient, as float32 arrays."""
  with tf.Graph().as_default():
    x = tf.Variable(x_value.astype(np.float32))  # Not constant-folded.
    x_in = tf.cast(x, dtype)
    y = function(x_in, depth_radius, beta=beta, **LRN_SETTINGS)
    grad = tf.gradients(y, x_in, tf.constant(upstream, dtype))[0]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      y_value, grad_value = sess.run([tf.cast(y, tf.float32),
                                      tf.cast(grad, tf.float32)])
  return y_value, grad_value


@needs_compiler
@pytest.mark.parametrize('shape, depth_radius, beta', [
    ((4, 12, 12, 64), 4, 0.75),   # norm1 and norm2: the compiled-in shape
    ((2, 3, 5, 7), 2, 0.5),       # any other depth and radius, and a pow
    ((1, 2, 2, 3), 5, 0.75),      # a window wider than the channels
    ((3, 5, 3, 20), 3, 0.75),     # channels past the last full vector
])
def test_fused_kernel_matches_tf_nn_lrn_and_its_gradient_in_float32(
    shape, depth_radius, beta):
  rng = np.random.RandomState(5)
  # Large inputs make the normalisation matter: norm ranges over ~1-10.
  x_value = (rng.standard_normal(shape) * 30).astype(np.float32)
  upstream = rng.standard_normal(shape).astype(np.float32)
  y_ref, grad_ref = _lrn_and_gradient(tf.nn.lrn, x_value, upstream,
                                      depth_radius, beta)
  y, grad = _lrn_and_gradient(fused_lrn, x_value, upstream, depth_radius,
                              beta)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(grad, grad_ref, rtol=1e-4, atol=1e-5)
  assert np.abs(grad_ref - upstream).max() > 0.1  # Not a trivial gradient.


@needs_compiler
def test_fused_kernel_in_bfloat16_is_float32_arithmetic_rounded_once():
  rng = np.random.RandomState(6)
  shape = (8, 12, 12, 64)
  # Values bfloat16 holds exactly, so that both sides start from one input.
  x_value = tf.bfloat16.as_numpy_dtype(rng.standard_normal(shape) * 30)
  x_value = x_value.astype(np.float32)
  upstream = tf.bfloat16.as_numpy_dtype(rng.standard_normal(shape))
  upstream = upstream.astype(np.float32)
  y_ref, grad_ref = _lrn_and_gradient(tf.nn.lrn, x_value, upstream, 4, 0.75)
  y, grad = _lrn_and_gradient(fused_lrn, x_value, upstream, 4, 0.75,
                              dtype=tf.bfloat16)
  # Rounded to nearest once: within half a bfloat16 step (2**-8 relative),
  # and most of the values exactly float32's, rounded.
  np.testing.assert_allclose(y, y_ref, rtol=2 ** -8, atol=1e-6)
  np.testing.assert_allclose(grad, grad_ref, rtol=2 ** -8, atol=1e-3)
  rounded = y_ref.astype(tf.bfloat16.as_numpy_dtype).astype(np.float32)
  assert np.mean(y == rounded) > 0.99


@needs_compiler
def test_mixed_bfloat16_network_feeds_its_bfloat16_activations_to_the_kernel():
  with tf.Graph().as_default() as graph:
    cifar10.logits(tf.zeros([2, 24, 24, 3]), 'mixed_bfloat16')
    lrns = [op for op in graph.get_operations() if op.type == 'TutorialLrn']
    assert [op.name.split('/')[0] for op in lrns] == ['norm1', 'norm2']
    # No cast to float32 and back: the kernel computes in float32 itself.
    assert all(op.inputs[0].dtype == tf.bfloat16 for op in lrns)
    assert not [op for op in graph.get_operations()
                if op.type == 'Cast' and op.name.startswith('norm')]


@needs_compiler
def test_float32_network_on_cpu_uses_the_kernel_and_exports_do_not():
  def lrn_op_types(precision='float32'):
    with tf.Graph().as_default() as graph:
      cifar10.logits(tf.zeros([2, 24, 24, 3]), precision)
    return [op.type for op in graph.get_operations()
            if op.type.startswith('TutorialLrn')]

  assert lrn_op_types() == ['TutorialLrn', 'TutorialLrn']
  with kernels.portable():
    assert lrn_op_types() == []
    with kernels.portable():
      assert lrn_op_types('mixed_bfloat16') == []
    assert lrn_op_types() == []
  assert lrn_op_types() == ['TutorialLrn', 'TutorialLrn']  # Only inside.
  assert lrn_op_types('float16') == []  # --use_fp16: no float16 kernel.


@needs_compiler
def test_gpu_graphs_keep_tensorflow_ops(monkeypatch):
  assert kernels.library()[0] is not None

  def lrn_of(dtype):
    kernels.lrn(tf.zeros([1, 2, 2, 64], dtype), 4, beta=0.75, **LRN_SETTINGS)

  with tf.Graph().as_default() as graph:
    with tf.device('/gpu:0'):
      lrn_of(tf.bfloat16)
      lrn_of(tf.float32)
    # Placed nowhere on a machine with a GPU: TensorFlow would pick the GPU.
    monkeypatch.setattr(kernels, '_gpus_visible', lambda: True)
    lrn_of(tf.bfloat16)
    assert not [op for op in graph.get_operations()
                if op.type.startswith('TutorialLrn')]
    with tf.device('/cpu:0'):  # Unless the graph puts it on a CPU.
      lrn_of(tf.bfloat16)
    assert [op.type for op in graph.get_operations()
            if op.type.startswith('TutorialLrn')] == ['TutorialLrn']


@needs_compiler
def test_training_a_mixed_bfloat16_step_uses_the_kernel_gradient():
  with tf.Graph().as_default() as graph:
    images = tf.random.uniform([4, 24, 24, 3])
    loss = cifar10.loss(cifar10.logits(images, 'mixed_bfloat16'),
                        tf.constant([0, 1, 2, 3]))
    step = cifar10.train(loss, tf.train.get_or_create_global_step(),
                         cifar10.TrainSettings(precision='mixed_bfloat16'))
    assert len([op for op in graph.get_operations()
                if op.type == 'TutorialLrnGrad']) == 2
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      losses = [sess.run([step, loss])[1] for _ in range(3)]
  assert np.all(np.isfinite(losses))


@needs_compiler
def test_the_kernels_are_built_once_checked_and_chosen_by_measurement(capsys):
  path, record = build.ready()
  assert os.path.basename(path).startswith('lrn_kernel-')
  assert os.stat(path).st_mode & stat.S_IROTH  # Readable by all.
  assert build.build() == path == build.library_path()  # Not built again.
  assert record['sha256'] == build.checksum(path)
  assert build.read_record(path) == record
  for kernel, dtype in (('lrn', 'float32'), ('lrn', 'bfloat16'),
                        ('distort', 'uint8')):
    choice = record['choices'][kernel][dtype]
    # The faster of the two is used.
    assert choice['fused'] == (choice['fused_ms'] <= choice['ops_ms'])
    assert build.uses(record, kernel, dtype) == choice['fused']
  assert kernels_command.main([]) == 0
  out = capsys.readouterr().out
  assert out.startswith('The fused kernels are %s, checked against '
                        'TensorFlow\'s ops on this machine:\n' % path)
  assert len(out.splitlines()) == 4
  assert all(line.endswith(('uses the fused kernel.', 'uses TensorFlow\'s '
                                                      'ops.'))
             for line in out.splitlines()[1:])


@needs_compiler
def test_where_a_kernel_is_slower_the_network_uses_tensorflows_ops(
    monkeypatch):
  ops, record = kernels.library()
  slower = json.loads(json.dumps(record))
  slower['choices']['lrn']['float32']['fused'] = False
  slower['choices']['distort']['uint8']['fused'] = False
  monkeypatch.setitem(kernels._loaded, build.cache_dir(), (ops, slower))  # pylint: disable=protected-access

  def op_types(precision):
    with tf.Graph().as_default() as graph:
      cifar10.logits(tf.zeros([2, 24, 24, 3]), precision)
      kernels.distort_batch(tf.zeros([2, 32, 32, 3], tf.uint8),
                            tf.zeros([2], tf.int32), tf.zeros([2], tf.int32),
                            tf.zeros([2], tf.bool), tf.zeros([2]),
                            tf.ones([2]), 24)
    return {op.type for op in graph.get_operations()}

  assert not {'TutorialLrn', 'TutorialDistortImages'} & op_types('float32')
  assert 'TutorialLrn' in op_types('mixed_bfloat16')  # Still faster there.


def _fake_compiler(folder, body):
  """A script standing in for g++: body runs with the output file in $OUT."""
  script = folder / 'fake-g++'
  script.write_text('#!/bin/sh\n'
                    'echo called >> "%s"\n'
                    'for a; do [ "$prev" = -o ] && OUT=$a; prev=$a; done\n'
                    '%s\n' % (folder / 'calls', body))
  script.chmod(0o755)
  return str(script)


@pytest.fixture
def cache(tmp_path, monkeypatch):
  """An empty kernel cache of the test's own."""
  folder = tmp_path / 'cache'
  monkeypatch.setenv('CIFAR10_KERNEL_CACHE', str(folder))
  monkeypatch.setenv('CIFAR10_KERNEL_CHECK_RUNS', '1')
  return folder


def test_without_a_compiler_the_lrn_falls_back_and_says_why(cache, monkeypatch,
                                                            capsys):
  monkeypatch.setenv('CXX', 'no-such-compiler')
  assert kernels.library() == (None, None)
  reason = kernels.unavailable_reason()
  assert reason == ('no C++ compiler: no-such-compiler was not found '
                    '(install g++, or set CXX)')
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and reason in err
  with tf.Graph().as_default() as graph:
    cifar10.logits(tf.zeros([2, 24, 24, 3]), 'mixed_bfloat16')
    types = {op.type for op in graph.get_operations()}
    assert 'TutorialLrn' not in types and 'Cast' in types
  # Building ahead (the install step) is not an error where it cannot be.
  assert kernels_command.main([]) == 0
  assert capsys.readouterr().err == (
      'cifar10.kernels: not built, %s; the LRN and the distortions run as '
      'TensorFlow ops.\n' % reason)


def test_switched_off_it_is_not_built(cache, monkeypatch, tmp_path):
  monkeypatch.setenv(kernels.LRN_SWITCH, 'off')
  monkeypatch.setenv('CXX', _fake_compiler(tmp_path, 'exit 1'))
  assert kernels.library() == (None, None)
  assert kernels.unavailable_reason() == 'CIFAR10_LRN_KERNEL=off'
  assert not (tmp_path / 'calls').exists()


def test_a_failed_compile_is_one_line_and_leaves_no_partial_file(
    cache, monkeypatch, tmp_path, capsys):
  monkeypatch.setenv('CXX', _fake_compiler(
      tmp_path, 'echo half > "$OUT"\n'
      'echo "lrn_kernel.cc:1:1: error: the headers do not match" >&2\n'
      'exit 1'))
  with pytest.raises(build.BuildError) as error:
    build.build()
  assert str(error.value) == (
      '%s could not compile lrn_kernel.cc and distort_kernel.cc: '
      'lrn_kernel.cc:1:1: error: the headers do not match' % os.environ['CXX'])
  assert sorted(os.listdir(cache)) == ['lrn_kernel.lock']
  # The wait is announced: a first build takes seconds.
  building = ('cifar10: building the fused kernels (LRN, image distortions) '
              'for this CPU, once, into %s\n' % cache)
  assert capsys.readouterr().err == building
  assert kernels_command.main([]) == 1  # A compiler that fails is an error.
  assert capsys.readouterr().err == (building + 'cifar10.kernels: %s\n'
                                     % error.value)


def test_an_unwritable_cache_is_a_clear_reason(tmp_path, monkeypatch):
  blocker = tmp_path / 'a-file'
  blocker.write_text('')
  monkeypatch.setenv('CIFAR10_KERNEL_CACHE', str(blocker / 'cache'))
  monkeypatch.setenv('CXX', _fake_compiler(tmp_path, 'exit 1'))
  with pytest.raises(build.BuildError,
                     match='cannot write the kernel cache .*a-file/cache: '
                     'Not a directory'):
    build.build()
  # library() turns it into the fallback, not an exception in the graph build.
  assert kernels.library() == (None, None)
  assert 'Not a directory' in kernels.unavailable_reason()


def test_a_compiler_command_with_arguments_is_run_as_one(cache, monkeypatch,
                                                         tmp_path):
  wrapper = _fake_compiler(tmp_path, 'echo "$1" > "$OUT"')
  monkeypatch.setenv('CXX', '%s --wrapped-g++' % wrapper)
  assert open(build.build()).read() == '--wrapped-g++\n'


def test_a_compiler_older_than_avx512_fp16_builds_without_that_flag(
    cache, monkeypatch, tmp_path):
  monkeypatch.setenv('CXX', _fake_compiler(
      tmp_path, 'case "$*" in *-mno-avx512fp16*)\n'
      '  echo "g++: error: unrecognized command-line option '
      "'-mno-avx512fp16'\" >&2; exit 1;;\nesac\n"
      'echo built > "$OUT"'))
  path = build.build()
  assert open(path).read() == 'built\n'
  assert (tmp_path / 'calls').read_text().count('called') == 2


def test_building_ahead_has_a_help_and_refuses_unknown_flags(capsys):
  with pytest.raises(SystemExit) as done:
    kernels_command.main(['--help'])
  assert done.value.code == 0
  assert 'usage: python -m cifar10.kernels' in capsys.readouterr().out
  with pytest.raises(SystemExit) as done:
    kernels_command.main(['--bogus'])
  assert done.value.code == 2
  assert capsys.readouterr().err.splitlines()[-1] == (
      'python -m cifar10.kernels: error: unrecognized arguments: --bogus')


# A fresh interpreter (as a command is) that loads the kernels of each cache
# folder named on its command line, in turn, and runs the network's LRN:
# whatever the cache holds, it must neither crash nor print a traceback.
_LOAD_PROGRAM = r'''
import json, os, sys
from tutorials_common import console
console.quiet_tensorflow()
import tensorflow.compat.v1 as tf
from cifar10 import kernels
found = {}
for folder in sys.argv[1:]:
  os.environ['CIFAR10_KERNEL_CACHE'] = folder
  ops, record = kernels.library()
  with tf.Graph().as_default() as graph:
    y = kernels.lrn(tf.ones([1, 12, 12, 64]), 4, 1.0, 0.001 / 9.0, 0.75)
    with tf.Session() as session:
      value = float(session.run(tf.reduce_sum(y)))
  found[folder] = [ops is not None, value,
                   any(op.type == 'TutorialLrn' for op in graph.get_operations())]
print(json.dumps(found))
'''


@needs_compiler
def test_a_damaged_kernel_cache_never_crashes_a_command(tmp_path,
                                                        monkeypatch):
  """Truncated, empty and foreign libraries in the cache, in real processes:
  a damaged library is checked in a child process before it is loaded,
  then built again (here by a 'compiler' that copies the good one); one
  that stays bad is skipped with one line."""
  good, _ = build.ready()
  foreign = tmp_path / 'foreign.so'
  (tmp_path / 'foreign.c').write_text('int not_a_tensorflow_op(void) '
                                      '{ return 0; }\n')
  subprocess.run([os.environ.get('CXX') or 'g++', '-shared', '-fPIC', '-o',
                  str(foreign), str(tmp_path / 'foreign.c')], check=True)
  copies_good = _fake_compiler(tmp_path, 'cp "%s" "$OUT"' % good)
  monkeypatch.setenv('CXX', copies_good)
  monkeypatch.setenv('CIFAR10_KERNEL_CHECK_RUNS', '1')
  folders = {}
  for case in ('truncated', 'empty', 'foreign'):
    folder = tmp_path / case
    folder.mkdir()
    path = build.library_path(str(folder))
    data = open(good, 'rb').read()
    if case == 'truncated':
      open(path, 'wb').write(data[:4096])
    elif case == 'empty':
      open(path, 'wb').write(b'')
      # A record left from the good library: its checksum no longer matches.
      with open(build.record_path(path), 'w') as f:
        json.dump({'sha256': build.checksum(good), 'choices': {}}, f)
    else:
      shutil.copy(str(foreign), path)
    folders[case] = (str(folder), path)
  result = subprocess.run(
      [sys.executable, '-c', _LOAD_PROGRAM] + [f for f, _ in folders.values()],
      capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
      env=dict(os.environ, CXX=copies_good))
  assert result.returncode == 0, result.stderr
  assert 'Traceback' not in result.stderr
  found = json.loads(result.stdout.splitlines()[-1])
  reference = found[folders['truncated'][0]][1]
  for folder, path in folders.values():
    # Built again, checked, loaded and used: the same LRN as TensorFlow's.
    assert found[folder][0] and found[folder][2], (folder, result.stderr)
    assert found[folder][1] == pytest.approx(reference, rel=1e-5)
    assert build.checksum(path) == build.checksum(good)
    assert build.read_record(path)['sha256'] == build.checksum(good)
  assert (tmp_path / 'calls').read_text().count('called') == 3

  # A library that stays bad: skipped with one line, the LRN as TensorFlow
  # ops, and `python -m cifar10.kernels` says it is not usable (status 1).
  monkeypatch.setenv('CXX', _fake_compiler(tmp_path, 'cp "%s" "$OUT"'
                                           % foreign))
  stays_bad = tmp_path / 'stays_bad'
  result = subprocess.run(
      [sys.executable, '-c', _LOAD_PROGRAM, str(stays_bad)],
      capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
  assert result.returncode == 0, result.stderr
  ops_loaded, value, fused = json.loads(result.stdout.splitlines()[-1])[
      str(stays_bad)]
  assert not ops_loaded and not fused
  assert value == pytest.approx(reference, rel=1e-4)
  notes = [line for line in result.stderr.splitlines()
           if line.startswith('cifar10: the fused kernels are not used')]
  assert len(notes) == 1 and 'has no tutorial_lrn op' in notes[0], \
      result.stderr
  assert 'Traceback' not in result.stderr
