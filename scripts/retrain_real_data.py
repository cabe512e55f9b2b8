"""Offline transfer learning on real CIFAR-10: extractor on 5 classes, retrain on 5 others.

  python scripts/retrain_real_data.py --cifar_dir ../shared/datasets/cifar10 \
      --work_dir /tmp/retrain_real --cifar_steps 1500 --per_class 500

Steps (each reuses what an earlier run left in --work_dir):
 1. keeps the records of airplane, automobile, bird, cat, deer in CIFAR-format
    files under WORK/data/cifar-10-batches-bin/;
 2. trains the CIFAR-10 tutorial model on them (cifar10/cifar10_train.py);
 3. exports it with image_retraining/export_cifar10_features.py (192 local4 features);
 4. writes --per_class training-batch images of dog, frog, horse, ship, truck
    as PNG folders (image_retraining/cifar10_to_folders.py);
 5. retrains on the folders (image_retraining/retrain.py), and
 6. trains a small CNN from scratch on the same training images and scores it
    on the same test images.
Training the extractor takes most of the time; docs/performance.md has
a measured run.
"""
import os
import re
import shutil
import subprocess
import sys

import bench_common  # First: it puts the repository on sys.path.
from absl import app
from absl import flags
import numpy as np
import retrain_baseline as baseline

from cifar10 import cifar10_input
from image_retraining import cifar10_to_folders
from image_retraining import split

FLAGS = flags.FLAGS
SOURCE_CLASSES = 'airplane,automobile,bird,cat,deer'
TARGET_CLASSES = 'dog,frog,horse,ship,truck'


def define_flags():
  flags.DEFINE_string('cifar_dir', os.path.join(bench_common.SHARED_DATASETS,
                                                'cifar10'),
                      'Folder holding cifar-10-batches-bin/ (path).')
  flags.DEFINE_string('work_dir', '/tmp/retrain_real',
                      'Working folder for everything made (path).')
  flags.DEFINE_integer('cifar_steps', 1500, 'CIFAR-10 training steps of the '
                       'feature extractor (batches of 128).')
  flags.DEFINE_integer('per_class', 500, 'Images per new class (count).')
  flags.DEFINE_integer('retrain_steps', 2000, 'retrain.py steps.')
  flags.DEFINE_integer('baseline_steps', 2000, 'From-scratch CNN steps '
                       '(batches of 64).')


def _run(args, log):
  print('+ ' + ' '.join(args), flush=True)
  result = subprocess.run(bench_common.command(args[0]) + args[1:],
                          cwd=bench_common.REPO_ROOT, capture_output=True,
                          text=True, env=bench_common.ENV)
  with open(log, 'w') as f:
    f.write(result.stdout + result.stderr)
  if result.returncode:
    sys.exit('failed (see %s):\n%s' % (log, result.stderr[-2000:]))
  return result.stdout


def main(argv):
  del argv
  work = FLAGS.work_dir
  src = os.path.join(FLAGS.cifar_dir, cifar10_input.BATCHES_DIR)
  data_dir = os.path.join(work, 'data')
  batches = os.path.join(data_dir, cifar10_input.BATCHES_DIR)
  if not os.path.isdir(batches):
    print(cifar10_to_folders.filter_batches(
        src, batches, cifar10_to_folders.parse_classes(SOURCE_CLASSES)))
  train_dir = os.path.join(work, 'cifar10_train')
  _run(['cifar10/cifar10_train.py', '--train_dir', train_dir, '--max_steps',
        str(FLAGS.cifar_steps), '--data_dir', data_dir, '--log_frequency',
        '100'], os.path.join(work, 'cifar10_train_final.log'))
  export_dir = os.path.join(work, 'features')
  if not os.path.isdir(export_dir):
    _run(['image_retraining/export_cifar10_features.py', '--checkpoint_dir', train_dir,
          '--export_dir', export_dir], os.path.join(work, 'export.log'))
  image_dir = os.path.join(work, 'images')
  if not os.path.isdir(image_dir):
    _run(['image_retraining/cifar10_to_folders.py', '--data_dir', FLAGS.cifar_dir,
          '--output_dir', image_dir, '--classes', TARGET_CLASSES,
          '--per_class', str(FLAGS.per_class)],
         os.path.join(work, 'folders.log'))
  model_dir = os.path.join(work, 'retrained')
  shutil.rmtree(model_dir, ignore_errors=True)  # made by an earlier run
  out = _run(['image_retraining/retrain.py', '--image_dir', image_dir, '--tfhub_module',
              export_dir, '--bottleneck_dir', os.path.join(work, 'bottlenecks'),
              '--summaries_dir', os.path.join(work, 'summaries'),
              '--saved_model_dir', model_dir, '--output_labels',
              os.path.join(work, 'labels.txt'), '--how_many_training_steps',
              str(FLAGS.retrain_steps), '--eval_step_interval', '500'],
             os.path.join(work, 'retrain.log'))
  retrained = re.findall(r'Final test accuracy = .*', out)[-1]

  lists = split.create_image_lists(image_dir)
  sets = {}
  for category in ('training', 'testing'):
    paths, labels = [], []
    for index, entry in enumerate(lists.values()):
      paths += [os.path.join(image_dir, entry['dir'], n)
                for n in entry[category]]
      labels += [index] * len(entry[category])
    sets[category] = (baseline.load_images(paths), np.asarray(labels))
  accuracy = baseline.train_and_test(
      sets['training'][0], sets['training'][1], sets['testing'][0],
      sets['testing'][1], len(lists), steps=FLAGS.baseline_steps)
  print('Retrained on CIFAR-10 (%s) features: %s' % (SOURCE_CLASSES,
                                                     retrained))
  print('From-scratch small CNN, same %d training images: test accuracy = '
        '%.1f%% (N=%d)' % (len(sets['training'][1]), accuracy * 100,
                           len(sets['testing'][1])))
  return 0


def run():
  define_flags()
  app.run(main)


if __name__ == '__main__':
  run()
