"""Exports a trained CIFAR-10 checkpoint as a feature extractor for retraining.

  python cifar10/cifar10_train.py --train_dir /tmp/c10 --max_steps 3000
  python scripts/export_cifar10_features.py --checkpoint_dir /tmp/c10 \
      --export_dir /tmp/c10_features
  python scripts/retrain.py --tfhub_module /tmp/c10_features --image_dir ...

The SavedModel maps float images in [0, 1] (any size; resized to 32x32 and
centre-cropped to 24x24, per-image standardised) to the 192-wide `local4`
activations, using the moving-average weights. Export takes a few seconds.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from image_retraining import export_cli  # noqa: E402

if __name__ == '__main__':
  export_cli.run()
