"""Pictures the predict commands write: PNG bytes and a bar chart.

mnist_predict and cifar10_predict both draw their ten probabilities with
bar_chart; numpy and TensorFlow's own PNG encoder, nothing else.
"""
import numpy as np
import tensorflow.compat.v1 as tf

# 3x5 glyphs of the digits, for the bar chart's labels.
_GLYPHS = ['111101101101111', '010110010010111', '111001111100111',
           '111001111001111', '101101111001001', '111100111001111',
           '111100111101111', '111001001001001', '111101111101111',
           '111101111001111']


def encode_png(pixels):
  """PNG bytes of a uint8 HxW (grey) or HxWx3 (colour) array."""
  pixels = np.asarray(pixels, np.uint8)
  if pixels.ndim == 2:
    pixels = pixels[:, :, None]
  # A graph of its own, so that it works whether or not eager mode is on.
  with tf.Graph().as_default(), tf.Session() as sess:
    return sess.run(tf.io.encode_png(pixels))


def bar_chart(probabilities, bar_width=24, height=120):
  """An RGB picture of 10 bars, the most probable in orange, labelled 0-9."""
  probabilities = np.asarray(probabilities, np.float64)
  gap, label_height = 6, 9
  width = 10 * (bar_width + gap) + gap
  picture = np.full((height + label_height, width, 3), 255, np.uint8)
  best = int(np.argmax(probabilities))
  for digit, p in enumerate(probabilities):
    left = gap + digit * (bar_width + gap)
    bar = int(round(float(np.clip(p, 0, 1)) * (height - 2)))
    colour = (230, 120, 20) if digit == best else (60, 110, 190)
    picture[height - bar:height, left:left + bar_width] = colour
    glyph = np.array(list(_GLYPHS[digit]), int).reshape(5, 3)
    glyph_left = left + bar_width // 2 - 1
    region = picture[height + 2:height + 7, glyph_left:glyph_left + 3]
    region[glyph == 1] = 0
  return picture


