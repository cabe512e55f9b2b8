"""The fused LRN kernel: its numbers against tf.nn.lrn, where the network
uses it, and its build: cached, atomic, and a clear fallback when it fails."""
import os
import shutil
import stat

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from cifar10 import cifar10
from cifar10 import lrn
from cifar10 import lrn_kernel

LRN_SETTINGS = dict(bias=1.0, alpha=0.001 / 9.0)
needs_compiler = pytest.mark.skipif(
    shutil.which(os.environ.get('CXX') or 'g++') is None,
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
])
def test_fused_kernel_matches_tf_nn_lrn_and_its_gradient_in_float32(
    shape, depth_radius, beta):
  rng = np.random.RandomState(5)
  # Large inputs make the normalisation matter: norm ranges over ~1-10.
  x_value = (rng.standard_normal(shape) * 30).astype(np.float32)
  upstream = rng.standard_normal(shape).astype(np.float32)
  y_ref, grad_ref = _lrn_and_gradient(tf.nn.lrn, x_value, upstream,
                                      depth_radius, beta)
  y, grad = _lrn_and_gradient(lrn.fused_lrn, x_value, upstream, depth_radius,
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
  y, grad = _lrn_and_gradient(lrn.fused_lrn, x_value, upstream, 4, 0.75,
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
    cifar10.inference(tf.zeros([2, 24, 24, 3]), precision='mixed_bfloat16')
    lrn_ops = [op for op in graph.get_operations()
               if op.type == 'TutorialLrn']
    assert [op.name.split('/')[0] for op in lrn_ops] == ['norm1', 'norm2']
    # No cast to float32 and back: the kernel computes in float32 itself.
    assert all(op.inputs[0].dtype == tf.bfloat16 for op in lrn_ops)
    assert not [op for op in graph.get_operations()
                if op.type == 'Cast' and op.name.startswith('norm')]


@needs_compiler
def test_float32_network_on_cpu_uses_the_kernel_and_exports_do_not():
  def lrn_op_types(dtype=tf.float32, precision='float32'):
    with tf.Graph().as_default() as graph:
      cifar10.inference(tf.zeros([2, 24, 24, 3], dtype), precision=precision)
    return [op.type for op in graph.get_operations()
            if op.type.startswith('TutorialLrn')]

  assert lrn_op_types() == ['TutorialLrn', 'TutorialLrn']
  with lrn.portable_graph():
    assert lrn_op_types() == []
    with lrn.portable_graph():
      assert lrn_op_types(precision='mixed_bfloat16') == []
    assert lrn_op_types() == []
  assert lrn_op_types() == ['TutorialLrn', 'TutorialLrn']  # Only inside.
  assert lrn_op_types(tf.float16) == []  # --use_fp16: no float16 kernel.


@needs_compiler
def test_gpu_graphs_keep_tensorflow_ops(monkeypatch):
  assert lrn_kernel.load() is not None

  def lrn_of(dtype):
    lrn.local_response_normalization(tf.zeros([1, 2, 2, 64], dtype),
                                     4, beta=0.75, **LRN_SETTINGS)

  with tf.Graph().as_default() as graph:
    with tf.device('/gpu:0'):
      lrn_of(tf.bfloat16)
      lrn_of(tf.float32)
    # Placed nowhere on a machine with a GPU: TensorFlow would pick the GPU.
    monkeypatch.setattr(lrn, '_gpus_visible', lambda: True)
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
    loss = cifar10.loss(
        cifar10.inference(images, precision='mixed_bfloat16'),
        tf.constant([0, 1, 2, 3]))
    step = cifar10.train(loss, tf.train.get_or_create_global_step(), 4,
                         precision='mixed_bfloat16')
    assert len([op for op in graph.get_operations()
                if op.type == 'TutorialLrnGrad']) == 2
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      losses = [sess.run([step, loss])[1] for _ in range(3)]
  assert np.all(np.isfinite(losses))


@needs_compiler
def test_the_kernel_is_built_once_into_the_cache_then_loaded(capsys):
  path = lrn_kernel.build()
  assert os.path.basename(path).startswith('lrn_kernel-')
  assert os.stat(path).st_mode & stat.S_IROTH  # Readable by all.
  assert lrn_kernel.build() == path  # In the cache: not built again.
  assert lrn_kernel.library_path() == path
  assert lrn_kernel.main() == 0
  assert capsys.readouterr().out == 'The fused kernels are %s\n' % path


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
  return folder


def test_without_a_compiler_the_lrn_falls_back_and_says_why(cache, monkeypatch,
                                                            capsys):
  monkeypatch.setenv('CXX', 'no-such-compiler')
  assert lrn_kernel.load() is None
  reason = lrn_kernel.unavailable_reason()
  assert reason == ('no C++ compiler: no-such-compiler was not found '
                    '(install g++, or set CXX)')
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and reason in err
  with tf.Graph().as_default() as graph:
    cifar10.inference(tf.zeros([2, 24, 24, 3]), precision='mixed_bfloat16')
    types = {op.type for op in graph.get_operations()}
    assert 'TutorialLrn' not in types and 'Cast' in types
  with pytest.raises(lrn_kernel.BuildError, match='no-such-compiler'):
    lrn.fused_lrn(tf.zeros([1, 1, 1, 4]), 2, beta=0.75, **LRN_SETTINGS)
  # Building ahead (the install step) is not an error where it cannot be.
  assert lrn_kernel.main() == 0
  assert capsys.readouterr().err == (
      'lrn_kernel: not built, %s; the LRN and the distortions run as '
      'TensorFlow ops.\n' % reason)


def test_switched_off_it_is_not_built(cache, monkeypatch, tmp_path):
  monkeypatch.setenv(lrn_kernel.SWITCH, 'off')
  monkeypatch.setenv('CXX', _fake_compiler(tmp_path, 'exit 1'))
  assert lrn_kernel.load() is None
  assert lrn_kernel.unavailable_reason() == 'CIFAR10_LRN_KERNEL=off'
  assert not (tmp_path / 'calls').exists()


def test_a_failed_compile_is_one_line_and_leaves_no_partial_file(
    cache, monkeypatch, tmp_path, capsys):
  monkeypatch.setenv('CXX', _fake_compiler(
      tmp_path, 'echo half > "$OUT"\n'
      'echo "lrn_kernel.cc:1:1: error: the headers do not match" >&2\n'
      'exit 1'))
  with pytest.raises(lrn_kernel.BuildError) as error:
    lrn_kernel.build()
  assert str(error.value) == (
      '%s could not compile lrn_kernel.cc and distort_kernel.cc: '
      'lrn_kernel.cc:1:1: error: the headers do not match' % os.environ['CXX'])
  assert sorted(os.listdir(cache)) == ['lrn_kernel.lock']
  # The wait is announced: a first build takes seconds.
  building = ('cifar10: building the fused kernels (LRN, image distortions) '
              'for this CPU, once, into %s\n' % cache)
  assert capsys.readouterr().err == building
  assert lrn_kernel.main() == 1  # A compiler that fails is an error.
  assert capsys.readouterr().err == building + 'lrn_kernel: %s\n' % error.value


def test_a_library_that_does_not_load_is_reported(cache, monkeypatch,
                                                  tmp_path):
  monkeypatch.setenv('CXX', _fake_compiler(tmp_path,
                                           'echo "not a library" > "$OUT"'))
  assert lrn_kernel.load() is None
  assert lrn_kernel.unavailable_reason().startswith(
      'cannot load %s: ' % lrn_kernel.library_path())
  # A cached file that does not load is built once more, then left there.
  assert (tmp_path / 'calls').read_text().count('called') == 2
  assert lrn_kernel.build() == lrn_kernel.library_path()
  assert (tmp_path / 'calls').read_text().count('called') == 2


def test_an_unwritable_cache_is_a_clear_reason(tmp_path, monkeypatch):
  blocker = tmp_path / 'a-file'
  blocker.write_text('')
  monkeypatch.setenv('CIFAR10_KERNEL_CACHE', str(blocker / 'cache'))
  monkeypatch.setenv('CXX', _fake_compiler(tmp_path, 'exit 1'))
  with pytest.raises(lrn_kernel.BuildError,
                     match='cannot write the kernel cache .*a-file/cache: '
                     'Not a directory'):
    lrn_kernel.build()
  # load() turns it into the fallback, not an exception in the graph build.
  assert lrn_kernel.load() is None
  assert 'Not a directory' in lrn_kernel.unavailable_reason()


def test_a_compiler_command_with_arguments_is_run_as_one(cache, monkeypatch,
                                                         tmp_path):
  wrapper = _fake_compiler(tmp_path, 'echo "$1" > "$OUT"')
  monkeypatch.setenv('CXX', '%s --wrapped-g++' % wrapper)
  assert open(lrn_kernel.build()).read() == '--wrapped-g++\n'


def test_a_compiler_older_than_avx512_fp16_builds_without_that_flag(
    cache, monkeypatch, tmp_path):
  monkeypatch.setenv('CXX', _fake_compiler(
      tmp_path, 'case "$*" in *-mno-avx512fp16*)\n'
      '  echo "g++: error: unrecognized command-line option '
      "'-mno-avx512fp16'\" >&2; exit 1;;\nesac\n"
      'echo built > "$OUT"'))
  path = lrn_kernel.build()
  assert open(path).read() == 'built\n'
  assert (tmp_path / 'calls').read_text().count('called') == 2


def test_building_ahead_has_a_help_and_refuses_unknown_flags(capsys):
  with pytest.raises(SystemExit) as done:
    lrn_kernel.main(['--help'])
  assert done.value.code == 0
  assert 'usage: python -m cifar10.lrn_kernel' in capsys.readouterr().out
  with pytest.raises(SystemExit) as done:
    lrn_kernel.main(['--bogus'])
  assert done.value.code == 2
  assert capsys.readouterr().err.splitlines()[-1] == (
      'python -m cifar10.lrn_kernel: error: unrecognized arguments: --bogus')
