"""docs/reference.md's "What a mistake prints" table is what the commands print.

Each row's command runs in this process (run_in_process) with /tmp/ moved
into a temp folder, where the files the row's mistake needs are made first;
its stderr must be the row's message, and its exit status 2.
"""
import os
import re
import shlex

import numpy as np

import cifar_fixtures
from tutorials_common import images as common_images

MODULES = {'cifar10_train': 'cifar10.cifar10_train',
           'cifar10_eval': 'cifar10.cifar10_eval',
           'cifar10_predict': 'cifar10.cifar10_predict',
           'mnist_predict': 'mnist_cnn.mnist_predict',
           'mnist_deep': 'mnist_cnn.mnist_deep'}
ROW = re.compile(r'^\| `([^`]+)`[^|]* \| `(.+)` \|$')


def message_rows():
  with open(os.path.join(cifar_fixtures.REPO_ROOT, 'docs', 'reference.md')) as f:
    text = f.read()
  table = text.split('<!-- messages:')[1].split('<!-- end of messages -->')[0]
  return [ROW.match(line).groups() for line in table.splitlines()
          if line.startswith('| `')]


def make_the_files_mistakes_need(root):
  batches = root / 'cifar10_data' / 'cifar-10-batches-bin'
  batches.mkdir(parents=True)
  (batches / 'data_batch_1.bin').write_bytes(b'\x01' * 3073)
  (root / 'notes.txt').write_text('not a picture\n')
  picture = np.zeros((28, 28), np.uint8)
  picture[4:24, 12:16] = 255
  (root / 'digit.png').write_bytes(common_images.encode_png(picture))
  (root / 'cat.png').write_bytes(common_images.encode_png(
      np.zeros((32, 32, 3), np.uint8)))
  (root / 'mnist_data').mkdir()
  (root / 'mnist_data' / 'train-images-idx3-ubyte.gz').write_bytes(b'\x1f\x8b')


def test_every_row_prints_what_the_readme_says(tmp_path, run_in_process):
  rows = message_rows()
  assert len(rows) == 7, rows
  root = tmp_path / 'tmp'
  root.mkdir()
  make_the_files_mistakes_need(root)
  before = sorted(p.relative_to(root) for p in root.rglob('*'))

  def here(text):
    return text.replace('/tmp/', str(root) + '/')

  for command, message in rows:
    program, *args = shlex.split(here(command))
    # Its other folders in the temp folder too, to see that none is made.
    args += {'cifar10_eval': ['--eval_dir', str(root / 'cifar10_eval')],
             'cifar10_train': ['--train_dir', str(root / 'cifar10_train')],
             }.get(program, [])
    result = run_in_process(MODULES[program], args, program=program)
    assert result.returncode == 2, (command, result.stderr)
    assert result.stderr == here(message) + '\n', command
  # Nothing was written by any of them: no folder, no file.
  assert sorted(p.relative_to(root) for p in root.rglob('*')) == before
