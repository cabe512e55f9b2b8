"""Writes CIFAR-10 binary records out as class folders of PNGs for retrain.py.

  python scripts/cifar10_to_folders.py --data_dir /work/shared/datasets/cifar10 \
      --output_dir /tmp/c10_folders --classes dog,frog,horse,ship,truck \
      --per_class 500

Writes OUT/<class>/<batch file>_<record>.png; ~1000 images/s.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from image_retraining import folders_cli  # noqa: E402

if __name__ == '__main__':
  folders_cli.run()
