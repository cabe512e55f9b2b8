"""Figures for the exported CIFAR-10 model: accuracy, latency, file sizes.

Given a trained checkpoint and the real CIFAR-10 data, exports the model with
cifar10_export.py --tflite --quantize (unless --export_dir already holds an
export), scores the SavedModel and both TensorFlow Lite files on the first
--num_examples test images, runs cifar10_eval.py --run_once on the same
checkpoint and images, and times one image and a batch of 100 through each
model. Prints a table; --output also writes the figures as JSON.

  python scripts/cifar10_export_real_data.py \
      --data_dir=../shared/datasets/cifar10 --checkpoint_dir=/tmp/cifar10_train

Expect the SavedModel's precision to equal cifar10_eval.py's exactly (the
same weights and preprocessing; the script exits with status 1 if it does
not), the float TensorFlow Lite model to agree with the SavedModel's top-1 on
every image, and the quantised one on nearly all.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
import warnings
from datetime import datetime

import bench_common  # First: it puts the repository on sys.path.
import numpy as np
import tensorflow as tf

from cifar10 import cifar10_input

EXPORT = os.path.join('cifar10', 'cifar10_export.py')
EVAL = os.path.join('cifar10', 'cifar10_eval.py')
PRECISION_LINE = re.compile(r': precision @ 1 = ([\d.]+)')
BATCH = 100


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default=os.path.join(
      bench_common.SHARED_DATASETS, 'cifar10'),
                      help='Folder holding cifar-10-batches-bin/ (path).')
  parser.add_argument('--checkpoint_dir', default='/tmp/cifar10_train',
                      help='Folder of the trained checkpoint (path).')
  parser.add_argument('--work_dir', default='/tmp/cifar10_export_real_data',
                      help='Where the export (unless --export_dir) and the '
                      "evaluation's events go (path).")
  parser.add_argument('--export_dir', default=None,
                      help='An export of this checkpoint to measure; made '
                      'there if it does not exist (default: work_dir/model, '
                      'made afresh).')
  parser.add_argument('--num_examples', type=int, default=10000,
                      help='Test images scored (images).')
  parser.add_argument('--repeats', type=int, default=50,
                      help='Timed runs per latency figure; the median is '
                      'reported (runs).')
  parser.add_argument('--threads', type=int, default=os.cpu_count(),
                      help='TensorFlow Lite interpreter threads (threads).')
  parser.add_argument('--output', default=None,
                      help='Also write the figures to this JSON file (path).')
  return parser.parse_args(argv)


def run(args):
  """Runs a project command; returns its CompletedProcess, raising on failure."""
  result = subprocess.run(bench_common.command(args[0]) + args[1:],
                          capture_output=True, text=True,
                          cwd=bench_common.REPO_ROOT, env=bench_common.ENV)
  if result.returncode != 0:
    sys.exit('%s failed (status %d):\n%s' % (os.path.basename(args[0]),
                                             result.returncode,
                                             result.stderr[-3000:]))
  return result


def test_images(data_dir, count):
  """uint8 [count, 32, 32, 3] images and int labels of test_batch.bin."""
  path = cifar10_input.data_files(data_dir, eval_data=True)[0]
  records = cifar10_input.read_records(path)[:count]
  if len(records) < count:
    sys.exit('%s holds %d images, fewer than --num_examples %d.' %
             (path, len(records), count))
  images = cifar10_input.record_images(records)
  return np.ascontiguousarray(images), records[:, 0].astype(np.int64)


def eval_precision(args, eval_dir):
  """cifar10_eval.py --run_once's precision @ 1: (exact value from its
  event file, the printed line's value)."""
  result = run([EVAL, '--data_dir', args.data_dir, '--checkpoint_dir',
                args.checkpoint_dir, '--eval_dir', eval_dir, '--run_once',
                '--num_examples', str(args.num_examples)])
  printed = float(PRECISION_LINE.findall(result.stdout)[-1])
  exact = None
  for name in sorted(os.listdir(eval_dir)):
    for event in tf.compat.v1.train.summary_iterator(
        os.path.join(eval_dir, name)):
      for value in event.summary.value:
        if value.tag == 'Precision @ 1':
          exact = value.simple_value
  return exact, printed


class TfliteModel(object):
  """A .tflite file behind a probabilities(pixels) call."""

  def __init__(self, path, threads):
    self.interpreter = tf.lite.Interpreter(model_path=path,
                                           num_threads=threads)
    self.input = self.interpreter.get_input_details()[0]['index']
    self.output = self.interpreter.get_output_details()[0]['index']
    self.batch = None

  def __call__(self, pixels):
    if self.batch != len(pixels):
      self.interpreter.resize_tensor_input(self.input, list(pixels.shape))
      self.interpreter.allocate_tensors()
      self.batch = len(pixels)
    self.interpreter.set_tensor(self.input, pixels)
    self.interpreter.invoke()
    return self.interpreter.get_tensor(self.output)


def in_batches(predict, inputs, batch=BATCH):
  return np.concatenate([predict(inputs[i:i + batch])
                         for i in range(0, len(inputs), batch)])


def latency_ms(predict, inputs, repeats):
  """Median wall time of predict(inputs) in milliseconds, after warm-up."""
  for _ in range(3):
    predict(inputs)
  times = []
  for _ in range(repeats):
    started = time.perf_counter()
    predict(inputs)
    times.append(time.perf_counter() - started)
  return 1000 * float(np.median(times))


def measure(args):
  tf.get_logger().setLevel('ERROR')  # Deprecation notices.
  warnings.filterwarnings('ignore', message='.*tf.lite.Interpreter is deprecated')
  export_dir = args.export_dir or os.path.join(args.work_dir, 'model')
  os.makedirs(args.work_dir, exist_ok=True)
  figures = {'date': datetime.now().strftime('%Y-%m-%d'),
             'machine': '%(cpu)s, %(cores)d cores (%(vector)s)' %
                        bench_common.cpu(),
             'tensorflow': tf.__version__, 'checkpoint_dir': args.checkpoint_dir,
             'num_examples': args.num_examples, 'tflite_threads': args.threads}
  if not os.path.isdir(export_dir) or not args.export_dir:
    started = time.time()
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    run([EXPORT, '--checkpoint_dir', args.checkpoint_dir, '--export_dir',
         export_dir, '--data_dir', args.data_dir, '--tflite', '--quantize',
         '--overwrite'])
    figures['export_seconds'] = round(time.time() - started, 1)
  eval_dir = os.path.join(args.work_dir, 'eval-%d' % os.getpid())
  figures['eval_precision'], figures['eval_precision_printed'] = (
      eval_precision(args, eval_dir))

  images, labels = test_images(args.data_dir, args.num_examples)
  pixels = images.astype(np.float32)
  model = tf.saved_model.load(export_dir)
  by_pixels = model.signatures['predict_images']
  by_bytes = model.signatures['serving_default']

  def saved_model(batch):
    return by_pixels(images=tf.constant(batch))['probabilities'].numpy()

  encoded = np.array([tf.io.encode_png(image).numpy() for image in images],
                     dtype=object)

  def saved_model_png(batch):
    return by_bytes(image_bytes=tf.constant(batch))['probabilities'].numpy()

  reference = in_batches(saved_model, pixels)
  top1 = reference.argmax(axis=1)
  figures['saved_model_correct'] = int((top1 == labels).sum())
  figures['saved_model_precision'] = figures['saved_model_correct'] / float(
      len(labels))
  png_top1 = in_batches(saved_model_png, encoded).argmax(axis=1)
  figures['serving_default_precision'] = float((png_top1 == labels).mean())

  models = [('SavedModel predict_images', saved_model, pixels),
            ('SavedModel serving_default (PNG bytes)', saved_model_png,
             encoded)]
  sizes = {'SavedModel': sum(
      os.path.getsize(os.path.join(root, name))
      for root, _, names in os.walk(export_dir) for name in names
      if not name.endswith('.tflite'))}
  for name, label in (('model.tflite', 'TFLite float'),
                      ('model_quantized.tflite', 'TFLite quantised')):
    path = os.path.join(export_dir, name)
    sizes[name] = os.path.getsize(path)
    lite = TfliteModel(path, args.threads)
    lite_top1 = in_batches(lite, pixels).argmax(axis=1)
    key = 'tflite_quantized' if 'quantized' in name else 'tflite_float'
    figures[key + '_precision'] = float((lite_top1 == labels).mean())
    figures[key + '_top1_agreement'] = float((lite_top1 == top1).mean())
    models.append((label, lite, pixels))
  figures['sizes_bytes'] = sizes

  figures['latency_ms'] = {}
  for label, predict, inputs in models:
    figures['latency_ms'][label] = {
        'one image': latency_ms(predict, inputs[:1], args.repeats),
        'batch of 100': latency_ms(predict, inputs[:BATCH], args.repeats)}
  return figures


def report(figures):
  print('Exported model on %d CIFAR-10 test images (%s; %s; TensorFlow %s)'
        % (figures['num_examples'], figures['date'], figures['machine'],
           figures['tensorflow']))
  print()
  print('| precision @ 1 | value |')
  print('| --- | --- |')
  for label, key in (('cifar10_eval.py --run_once', 'eval_precision'),
                     ('SavedModel, predict_images', 'saved_model_precision'),
                     ('SavedModel, serving_default (PNG bytes)',
                      'serving_default_precision'),
                     ('TFLite float', 'tflite_float_precision'),
                     ('TFLite quantised', 'tflite_quantized_precision')):
    print('| %s | %.4f |' % (label, figures[key]))
  print('| TFLite float, top-1 agreement with the SavedModel | %.4f |' %
        figures['tflite_float_top1_agreement'])
  print('| TFLite quantised, top-1 agreement with the SavedModel | %.4f |' %
        figures['tflite_quantized_top1_agreement'])
  print()
  print('| latency (median ms) | one image | batch of 100 |')
  print('| --- | --- | --- |')
  for label, times in figures['latency_ms'].items():
    print('| %s | %.2f | %.2f |' % (label, times['one image'],
                                    times['batch of 100']))
  print()
  print('| file | bytes |')
  print('| --- | --- |')
  for name, size in figures['sizes_bytes'].items():
    print('| %s | %d (%.2f MB) |' % (name, size, size / 1e6))


def main(argv=None):
  args = parse_args(argv)
  test_file = os.path.join(args.data_dir, cifar10_input.BATCHES_DIR,
                           'test_batch.bin')
  if not os.path.isfile(test_file):
    sys.exit('No CIFAR-10 test file at %s: point --data_dir at the real data.'
             % test_file)
  figures = measure(args)
  report(figures)
  if args.output:
    with open(args.output, 'w') as f:
      json.dump(figures, f, indent=2)
  expected = figures['eval_precision']
  if expected is None or abs(figures['saved_model_precision'] -
                             expected) > 0.5 / args.num_examples:
    print('MISMATCH: the SavedModel scores %.4f, cifar10_eval.py %s.' %
          (figures['saved_model_precision'], expected))
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
