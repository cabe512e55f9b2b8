"""Random image distortions; distorted images bypass the bottleneck cache."""
import numpy as np
import tensorflow as tf

from image_retraining import features


def should_distort(flip_left_right, random_crop, random_scale,
                   random_brightness):
  return (flip_left_right or random_crop != 0 or random_scale != 0 or
          random_brightness != 0)


def distort(image, flip_left_right, random_crop, random_scale,
            random_brightness, rng):
  """image float [H, W, 3] in [0, 1] -> distorted image, same size.

  random_crop / random_scale / random_brightness are percents as in the
  original: the crop keeps 1/(1+crop%) of each side, scaled by up to
  scale%, and brightness is multiplied by [1-b%, 1+b%].
  """
  h, w = int(image.shape[0]), int(image.shape[1])
  margin = 1.0 + random_crop / 100.0
  scale = 1.0 + rng.uniform(0, random_scale / 100.0)
  keep = min(1.0, scale / margin)
  ch, cw = max(1, int(round(h * keep))), max(1, int(round(w * keep)))
  if (ch, cw) != (h, w):
    top = rng.randint(0, h - ch + 1)
    left = rng.randint(0, w - cw + 1)
    image = tf.image.resize(image[top:top + ch, left:left + cw], (h, w))
  if flip_left_right and rng.rand() < 0.5:
    image = tf.image.flip_left_right(image)
  if random_brightness:
    image = image * rng.uniform(1 - random_brightness / 100.0,
                                1 + random_brightness / 100.0)
  return tf.clip_by_value(image, 0.0, 1.0)


def distorted_features(paths, extractor, options, rng):
  """Decodes, distorts and featurises images; returns numpy [N, D]."""
  out = []
  for path in paths:
    image = distort(features.decode_image_file(path), rng=rng, **options)
    out.append(extractor(image[tf.newaxis])[0])
  return np.stack(out)
