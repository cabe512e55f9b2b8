"""The tutorial's CIFAR-10 model written the way a PyTorch user would, on the CPU.

The second speed reference for scripts/benchmark_speed.py (PyTorch is an
optional extra: `pip install -e '.[torch]'`). The same network as cifar10.py
(conv 5x5x64, max-pool 3x3/2, LRN, conv 5x5x64, LRN, max-pool, fully
connected 384 and 192, linear 10), the same initialisation, weight decay
(0.004 on the two hidden fully connected layers) and distortions (random 24x24
crop, flip, brightness, contrast, per-image standardisation), SGD at 0.1,
batch 128, from the same binary files through a Dataset and a DataLoader.

  python scripts/cifar10_torch.py --data_dir=../shared/datasets/cifar10 --steps=300

Prints cifar10_train.py's log line every --log_frequency steps (docs/performance.md,
Speed, compares its examples/sec with cifar10_train.py's).
"""
import argparse
import math
import os
import sys
import time
from datetime import datetime

import numpy as np
import torch
from torch import nn

# The record format and file names of cifar10_input, restated: importing it
# would load TensorFlow into the PyTorch process and skew its timing.
RECORD_BYTES = 1 + 32 * 32 * 3
TRAIN_FILES = ['data_batch_%d.bin' % i for i in range(1, 6)]
LOG_LINE = '%s: step %d, loss = %.2f (%.1f examples/sec; %.3f sec/batch)'


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default='/tmp/cifar10_data',
                      help='Folder holding cifar-10-batches-bin/.')
  parser.add_argument('--steps', type=int, default=300,
                      help='Training steps (batches).')
  parser.add_argument('--batch_size', type=int, default=128,
                      help='Images per step.')
  parser.add_argument('--num_workers', type=int, default=1,
                      help='DataLoader worker processes (processes).')
  parser.add_argument('--log_frequency', type=int, default=10,
                      help='Steps between log lines.')
  return parser.parse_args(argv)


class DistortedCifar10(torch.utils.data.Dataset):
  """The training files, each image distorted as the tutorial does."""

  def __init__(self, data_dir):
    records = np.concatenate([
        np.fromfile(os.path.join(data_dir, 'cifar-10-batches-bin', name),
                    np.uint8).reshape(-1, RECORD_BYTES)
        for name in TRAIN_FILES])
    self.labels = torch.from_numpy(records[:, 0].astype(np.int64))
    self.images = torch.from_numpy(
        np.ascontiguousarray(records[:, 1:].reshape(-1, 3, 32, 32)))

  def __len__(self):
    return len(self.labels)

  def __getitem__(self, index):
    y, x = torch.randint(0, 9, (2,)).tolist()
    image = self.images[index, :, y:y + 24, x:x + 24].float()
    if torch.rand(()) < 0.5:
      image = image.flip(2)
    image = image + torch.empty(()).uniform_(-63, 63)
    channel_means = image.mean(dim=(1, 2), keepdim=True)
    image = ((image - channel_means) * torch.empty(()).uniform_(0.2, 1.8) +
             channel_means)
    std = image.std(unbiased=False).clamp(min=1 / math.sqrt(image.numel()))
    return (image - image.mean()) / std, self.labels[index]


class Net(nn.Module):
  """The tutorial's network, layer for layer (NCHW)."""

  def __init__(self):
    super(Net, self).__init__()
    self.conv1 = nn.Conv2d(3, 64, 5, padding=2)
    self.conv2 = nn.Conv2d(64, 64, 5, padding=2)
    self.pool = nn.MaxPool2d(3, 2, padding=1)
    # PyTorch divides alpha by the window size; the tutorial's is 0.001 / 9.
    self.norm = nn.LocalResponseNorm(9, alpha=0.001, beta=0.75, k=1.0)
    self.local3 = nn.Linear(64 * 6 * 6, 384)
    self.local4 = nn.Linear(384, 192)
    self.softmax_linear = nn.Linear(192, 10)
    for layer, stddev, bias in [(self.conv1, 5e-2, 0.0), (self.conv2, 5e-2, 0.1),
                                (self.local3, 0.04, 0.1),
                                (self.local4, 0.04, 0.1),
                                (self.softmax_linear, 1 / 192.0, 0.0)]:
      nn.init.trunc_normal_(layer.weight, std=stddev, a=-2 * stddev,
                            b=2 * stddev)
      nn.init.constant_(layer.bias, bias)

  def forward(self, x):
    x = self.norm(self.pool(torch.relu(self.conv1(x))))  # conv1, pool1, norm1
    x = self.pool(self.norm(torch.relu(self.conv2(x))))  # conv2, norm2, pool2
    x = torch.relu(self.local3(x.flatten(1)))
    x = torch.relu(self.local4(x))
    return self.softmax_linear(x)


def main(argv=None):
  args = parse_args(argv)
  model = Net()
  decayed = [model.local3.weight, model.local4.weight]
  others = [p for p in model.parameters() if all(p is not d for d in decayed)]
  optimizer = torch.optim.SGD([{'params': decayed, 'weight_decay': 0.004},
                               {'params': others}], lr=0.1)
  loader = torch.utils.data.DataLoader(
      DistortedCifar10(args.data_dir), batch_size=args.batch_size,
      shuffle=True, drop_last=True, num_workers=args.num_workers,
      persistent_workers=args.num_workers > 0)
  print('PyTorch %s, %d threads, %d loader workers' % (
      torch.__version__, torch.get_num_threads(), args.num_workers))
  step = 0
  start = time.time()
  while step < args.steps:
    for images, labels in loader:
      loss = nn.functional.cross_entropy(model(images), labels)
      optimizer.zero_grad()
      loss.backward()
      optimizer.step()
      step += 1
      if step % args.log_frequency == 0:
        now = time.time()
        duration = now - start
        start = now
        print(LOG_LINE % (datetime.now(), step, loss.item(),
                          args.log_frequency * args.batch_size / duration,
                          duration / args.log_frequency))
        sys.stdout.flush()
      if step >= args.steps:
        break
  return 0


if __name__ == '__main__':
  sys.exit(main())
