"""Retrains a new top layer on your own image folders (transfer learning).

  python scripts/retrain.py --image_dir DIR --tfhub_module MODULE \\
      --saved_model_dir OUT --output_labels OUT/labels.txt

MODULE is a TF Hub handle (needs tensorflow_hub + internet) or a local
feature-vector SavedModel (e.g. from scripts/export_cifar10_features.py).
Bottlenecks are cached in --bottleneck_dir; with cached bottlenecks 4000 steps
of the final layer take well under a minute on CPU. Accuracy depends on the
extractor: Inception V3 reaches ~90% on the flowers set; the offline CIFAR-10
extractor, see scripts/retrain_real_data.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from image_retraining import retrain_cli  # noqa: E402

if __name__ == '__main__':
  retrain_cli.run()
