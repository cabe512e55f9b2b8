"""The from-scratch CNN the real-data retraining script compares against
(scripts/retrain_baseline.py)."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'scripts'))
import retrain_baseline as baseline  # noqa: E402


def test_baseline_cnn_learns_a_separable_task():
  rng = np.random.RandomState(0)
  labels = rng.randint(0, 2, 200)
  pictures = rng.uniform(0, 0.2, (200, 32, 32, 3)).astype(np.float32)
  pictures[labels == 1, 8:24, 8:24] += 0.7  # a bright square means class 1
  accuracy = baseline.train_and_test(pictures[:150], labels[:150],
                                     pictures[150:], labels[150:], 2, steps=60)
  assert accuracy > 0.9
