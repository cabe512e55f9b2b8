"""Labels an image with a model made by scripts/retrain.py; prints top scores.

  python scripts/label_image.py --image IMG.png --saved_model_dir OUT \\
      --labels OUT/labels.txt

Takes a few seconds (mostly loading TensorFlow and the SavedModel).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from image_retraining import label_image_cli  # noqa: E402

if __name__ == '__main__':
  label_image_cli.run()
