"""The one image decoder's limit on a picture's pixels (images.MAX_PIXELS).

A decompression bomb (a small file of a huge picture: here 10000x10000, a
few hundred kilobytes or less in each format, written by hand) is refused
from its header, before it is decoded, in the numpy form (read_image_file:
mnist_predict, label_image, retraining) and the graph form (decode:
cifar10_predict and the SavedModel's serving signature), with one line
naming the file, its size and the limit; a fresh process shows that its
resident memory stays far below what the pixels would take. JPEG XL, whose
size the decoder does not read, and a GIF of more blocks than it counts are
refused too.
"""
import functools
import json
import os
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf2
import tensorflow.compat.v1 as tf

import cifar_fixtures
from cifar_fixtures import REPO_ROOT
from cifar10 import trained_model
from image_retraining import features
from image_retraining.errors import RetrainError
from mnist_cnn import images as mnist_images
from suite_helpers import bmp_bytes
from tutorials_common import images
from tutorials_common.errors import one_line

SIDE = 10000  # 100 megapixels: twice the limit, 300 MB decoded as RGB.


def _chunk(kind, data):
  return (struct.pack('>I', len(data)) + kind + data +
          struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))


def png_bomb(width, height):
  """A black 8-bit grey PNG, compressed a hundred rows at a time (deflate
  makes a thousand zero bytes of about one)."""
  compressor = zlib.compressobj(9)
  rows = bytes(width + 1) * 100  # each row: filter 0, then its pixels
  data = b''.join(compressor.compress(rows) for _ in range(height // 100))
  data += compressor.compress(bytes(width + 1) * (height % 100))
  return (b'\x89PNG\r\n\x1a\n' +
          _chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0))
          + _chunk(b'IDAT', data + compressor.flush()) + _chunk(b'IEND', b''))


def jpeg_bomb(width, height):
  """A grey baseline JPEG whose every 8x8 block is flat: with Huffman
  tables of one code each, a block is two bits (a DC difference of 0, then
  the end of the block), and the bits are all 0."""
  def segment(marker, body):
    return b'\xff' + marker + struct.pack('>H', len(body) + 2) + body
  one_code = b'\x01' + b'\x00' * 15 + b'\x00'  # one code of 1 bit: symbol 0
  blocks = ((width + 7) // 8) * ((height + 7) // 8)
  return (b'\xff\xd8' + segment(b'\xdb', b'\x00' + b'\x01' * 64) +
          segment(b'\xc0', struct.pack('>BHHB', 8, height, width, 1) +
                  b'\x01\x11\x00') +
          segment(b'\xc4', b'\x00' + one_code + b'\x10' + one_code) +
          segment(b'\xda', b'\x01\x01\x00\x00\x3f\x00') +
          bytes((2 * blocks + 7) // 8) + b'\xff\xd9')


def gif_bytes(width, height, frames=1, screen=None):
  """A GIF of frames black frames of width x height on a screen (width,
  height unless given), LZW-coded by hand: after each clear code, each code
  names the string being added, one pixel longer than the last, so even a
  frame of a hundred megapixels is a small file."""
  data, state = bytearray(), {'bits': 3, 'next': 6, 'top': 8, 'held': 0,
                              'count': 0}

  def put(code):
    # As giflib reads: codes widen once the next new code no longer fits.
    state['held'] |= code << state['count']
    state['count'] += state['bits']
    while state['count'] >= 8:
      data.append(state['held'] & 255)
      state['held'] >>= 8
      state['count'] -= 8
    if state['next'] < 4097:
      state['next'] += 1
      if state['next'] > state['top'] and state['bits'] < 12:
        state['top'] <<= 1
        state['bits'] += 1

  pixels = 0
  while pixels < width * height:
    put(4)  # clear: colours 0-3, clear 4, end 5, new codes from 6
    state.update(bits=3, next=6, top=8)
    put(0)
    pixels += 1
    length = 2
    while pixels < width * height and length <= 4091:
      put(length + 4)
      pixels += length
      length += 1
  put(5)
  if state['count']:
    data.append(state['held'] & 255)
  blocks = b''.join(bytes([len(data[at:at + 255])]) + data[at:at + 255]
                    for at in range(0, len(data), 255)) + b'\x00'
  frame = (b',' + struct.pack('<HHHHB', 0, 0, width, height, 0) + b'\x02' +
           blocks)
  screen_width, screen_height = screen or (width, height)
  return (b'GIF89a' + struct.pack('<HHBBB', screen_width, screen_height,
                                  0x80, 0, 0) + b'\x00\x00\x00\xff\xff\xff' +
          frame * frames + b';')


def webp_bytes(width, height, grey=0):
  """A lossless WebP of one grey level, written by hand: its five prefix
  codes have one symbol each, so its pixels take no bits at all (and a
  picture of any size, up to 16384x16384, takes a few dozen bytes)."""
  bits = []

  def put(value, count):  # least significant bit first
    bits.extend((value >> i) & 1 for i in range(count))

  put(width - 1, 14)
  put(height - 1, 14)
  put(0, 4)  # no alpha hint, version 0
  put(0, 3)  # no transform, no colour cache, no meta prefix codes
  for symbol in (grey, grey, grey, 255, 0):  # green, red, blue, alpha, distance
    put(0b101, 3)  # a simple code of one 8-bit symbol
    put(symbol, 8)
  bits += [0] * (-len(bits) % 8)
  stream = b'\x2f' + bytes(
      sum(bit << i for i, bit in enumerate(bits[at:at + 8]))
      for at in range(0, len(bits), 8))
  stream += b'\0' * (len(stream) % 2)
  chunk = b'VP8L' + struct.pack('<I', len(stream)) + stream
  return b'RIFF' + struct.pack('<I', 4 + len(chunk)) + b'WEBP' + chunk


def bmp_header(width, height):
  """A BMP's headers alone: the pixels would be as big as they are, so a
  BMP is no bomb, but its size is checked as every format's is."""
  data = bmp_bytes(np.zeros((1, 1, 3), np.uint8))
  return data[:18] + struct.pack('<ii', width, height) + data[26:]


@functools.lru_cache(maxsize=None)
def bombs():
  """{file name: bytes} of 10000x10000 pictures; 'frames.gif' is a GIF of
  one pixel whose frame is 10000x10000 (TensorFlow's GIF decoder unpacks
  every frame before it keeps the first)."""
  return {'bomb.png': png_bomb(SIDE, SIDE), 'bomb.jpg': jpeg_bomb(SIDE, SIDE),
          'bomb.gif': gif_bytes(SIDE, SIDE),
          'bomb.webp': webp_bytes(SIDE, SIDE),
          'frames.gif': gif_bytes(SIDE, SIDE, screen=(1, 1)),
          'bomb.bmp': bmp_header(SIDE, -SIDE)}


LIMIT = ('more than the 50 megapixels the tutorials decode (MAX_PIXELS in '
         'tutorials_common/images.py): make it smaller first.')
# What each bomb is, in the words of the error.
SIZE = {'bomb.png': '10000x10000 pixels', 'bomb.jpg': '10000x10000 pixels',
        'bomb.gif': '10000x10000 pixels', 'bomb.webp': '10000x10000 pixels',
        'frames.gif': '1x1 pixels, but its frames hold 100000000',
        'bomb.bmp': '10000x10000 pixels'}


def _write_bombs(folder):
  folder.mkdir(exist_ok=True)
  for name, data in bombs().items():
    (folder / name).write_bytes(data)
  return folder


def test_the_bombs_are_small_files_of_pictures_that_decode():
  # What the limit keeps out is real: the same files, smaller, decode to
  # the pictures their headers promise.
  for data, shape in [(png_bomb(300, 200), (200, 300)),
                      (jpeg_bomb(300, 200), (200, 300)),
                      (gif_bytes(300, 200), (200, 300)),
                      (webp_bytes(300, 200), (200, 300))]:
    pixels = tf2.io.decode_image(data, channels=3).numpy()
    assert pixels.shape[-3:] == shape + (3,)
    assert len(np.unique(pixels)) == 1
  assert all(len(data) < 400 * 1024 for data in bombs().values())
  assert images.MAX_PIXELS < SIDE * SIDE


@pytest.mark.parametrize('name', sorted(SIZE))
def test_read_image_file_refuses_a_bomb_from_its_header(tmp_path, name):
  path = _write_bombs(tmp_path) / name
  with pytest.raises(images.ImageError) as raised:
    images.read_image_file(str(path))
  assert str(raised.value) == '%s is %s, %s' % (path, SIZE[name], LIMIT)
  # mnist_predict's grey decoding and retraining's (RetrainError) say it too.
  start = '^' + re.escape('%s is %s' % (path, SIZE[name]))
  with pytest.raises(images.ImageError, match=start):
    mnist_images.decode_image_file(str(path))
  with pytest.raises(RetrainError, match=start):
    features.decode_image_file(str(path))


def test_the_graph_form_refuses_every_bomb():
  # cifar10_predict's graph (and cifar10_export's serving signature): the
  # assertion on the header fails before decode_image runs.
  with tf.Graph().as_default():
    encoded = tf.placeholder(tf.string, [None])
    pixels = trained_model.decode_images(encoded)
    with tf.Session() as sess:
      for name in sorted(SIZE):
        with pytest.raises(tf.errors.InvalidArgumentError) as raised:
          sess.run(pixels, {encoded: [bombs()[name]]})
        reason = one_line(raised.value)
        assert reason.startswith('The ')
        assert SIZE[name] in reason and LIMIT in reason
        assert '\n' not in reason


def test_the_limit_is_exact_in_both_forms(tmp_path):
  # A 12x10 picture of each format, its size in that format's own header
  # field (PNG's IHDR, JPEG's frame header, GIF's screen and frame, BMP's
  # info header, WebP's lossless header): 120 pixels are allowed, 119 not.
  pixels = np.zeros((10, 12, 3), np.uint8)
  pictures = {'png': tf2.io.encode_png(pixels).numpy(),
              'jpeg': tf2.io.encode_jpeg(pixels).numpy(),
              'gif': gif_bytes(12, 10), 'bmp': bmp_bytes(pixels),
              'webp': webp_bytes(12, 10)}
  with tf.Graph().as_default():
    encoded = tf.placeholder(tf.string, [])
    fits, too_many = images.decode(encoded, 120), images.decode(encoded, 119)
    with tf.Session() as sess:
      for fmt, data in pictures.items():
        path = tmp_path / fmt
        path.write_bytes(data)
        assert images.read_image_file(str(path), 120).shape == (10, 12, 3)
        with pytest.raises(images.ImageError, match='is 12x10 pixels, more '
                           'than the 0.000119 megapixels'):
          images.read_image_file(str(path), max_pixels=119)
        assert sess.run(fits, {encoded: data}).shape == (10, 12, 3)
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match='The picture is 12x10 pixels'):
          sess.run(too_many, {encoded: data})


def test_webp_of_every_kind_is_measured_by_its_header(tmp_path):
  # Lossy (VP8), lossless (VP8L) and extended (VP8X: here, for the alpha
  # channel, which TensorFlow decodes only as RGBA) files as an encoder
  # writes them.
  image = pytest.importorskip('PIL.Image')
  for options, mode, chunk in [({'lossless': False}, 'RGB', b'VP8 '),
                               ({'lossless': True}, 'RGB', b'VP8L'),
                               ({'lossless': False}, 'RGBA', b'VP8X')]:
    path = tmp_path / 'picture.webp'
    image.new(mode, (12, 10)).save(str(path), 'WEBP', **options)
    assert path.read_bytes()[12:16] == chunk
    assert images.read_image_file(str(path), max_pixels=120).shape == (10, 12,
                                                                       3)
    with pytest.raises(images.ImageError, match='is 12x10 pixels'):
      images.read_image_file(str(path), max_pixels=119)


def test_a_gif_is_measured_by_all_its_frames(tmp_path):
  # Three frames of 12x10: 360 pixels decoded, though only the first is kept.
  path = tmp_path / 'animation.gif'
  path.write_bytes(gif_bytes(12, 10, frames=3))
  assert images.read_image_file(str(path), max_pixels=360).shape == (10, 12, 3)
  with pytest.raises(images.ImageError,
                     match='is 12x10 pixels, but its frames hold 360, more'):
    images.read_image_file(str(path), max_pixels=359)


JPEG_XL = ('a JPEG XL picture, which the tutorials do not read: its size is '
           'not checked before decoding. Convert it to PNG or JPEG.')
# A GIF of a pixel, then a million empty comments (three bytes each).
LONG_GIF = gif_bytes(1, 1)[:-1] + b'\x21\xfe\x00' * 1000000 + b';'
TOO_MANY_BLOCKS = (
    'a GIF of more than 32768 blocks, which the tutorials do not read: its '
    'frames could not all be counted before decoding. Convert it to PNG or '
    'make it smaller.')


# TensorFlow decodes JPEG XL, whose size is not read here; a GIF of more
# blocks than are walked may hold frames past them.
@pytest.mark.parametrize('data, words', [
    (b'\xff\x0a' + bytes(64), JPEG_XL),
    (b'\x00\x00\x00\x0cJXL \r\n\x87\n' + bytes(64), JPEG_XL),
    (LONG_GIF, TOO_MANY_BLOCKS),
], ids=['JPEG XL', 'JPEG XL in a box', 'a GIF of too many blocks'])
def test_what_the_header_cannot_bound_is_refused_in_both_forms(tmp_path, data,
                                                               words):
  path = tmp_path / 'picture'
  path.write_bytes(data)
  with pytest.raises(images.ImageError) as raised:
    images.read_image_file(str(path))
  assert str(raised.value) == '%s is %s' % (path, words)
  with tf.Graph().as_default():
    pixels = images.decode(tf.constant(data))
    with tf.Session() as sess:
      with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        sess.run(pixels)
  assert one_line(raised.value) == 'The picture is %s' % words


def test_a_gif_of_as_many_blocks_as_are_counted_is_read_in_both_forms(
    tmp_path):
  # The frame is three steps of the count (its descriptor, its data, the
  # empty sub-block after it), each empty comment two, the trailer one:
  # 16382 comments fill the 32768 steps; one more is refused.
  def gif(comments):
    return gif_bytes(1, 1)[:-1] + b'\x21\xfe\x00' * comments + b';'
  path = tmp_path / 'picture.gif'
  with tf.Graph().as_default():
    encoded = tf.placeholder(tf.string, [])
    pixels = images.decode(encoded)
    with tf.Session() as sess:
      path.write_bytes(gif(16382))
      assert images.read_image_file(str(path)).shape == (1, 1, 3)
      assert sess.run(pixels, {encoded: gif(16382)}).shape == (1, 1, 3)
      path.write_bytes(gif(16383))
      with pytest.raises(images.ImageError, match=TOO_MANY_BLOCKS[:30]):
        images.read_image_file(str(path))
      with pytest.raises(tf.errors.InvalidArgumentError,
                         match=TOO_MANY_BLOCKS[:30]):
        sess.run(pixels, {encoded: gif(16383)})


def test_mnist_predict_and_label_image_refuse_a_bomb_in_one_line(
    tmp_path, run_in_process):
  folder = _write_bombs(tmp_path / 'pictures')
  for name in ('bomb.png', 'frames.gif'):
    result = run_in_process('mnist_cnn.mnist_predict', [
        '--image', str(folder / name), '--chart=',
        '--checkpoint_dir', str(tmp_path / 'no_checkpoints')])
    assert result.returncode == 2
    assert result.stderr == 'mnist_predict: error: %s is %s, %s\n' % (
        folder / name, SIZE[name], LIMIT)
  (tmp_path / 'labels.txt').write_text('cat\ndog\n')
  result = run_in_process('image_retraining.label_image', [
      '--image', str(folder / 'bomb.webp'), '--labels',
      str(tmp_path / 'labels.txt'), '--saved_model_dir', str(tmp_path)])
  assert result.returncode == 2
  assert result.stderr == 'label_image: error: %s is %s, %s\n' % (
      folder / 'bomb.webp', SIZE['bomb.webp'], LIMIT)


def test_cifar10_predict_skips_each_bomb_with_one_line(tmp_path,
                                                       run_in_process):
  checkpoint = cifar_fixtures.write_checkpoint(tmp_path / 'train', 1)
  folder = _write_bombs(tmp_path / 'pictures')
  (folder / 'cat.png').write_bytes(
      tf2.io.encode_png(np.full((32, 32, 3), 128, np.uint8)).numpy())
  result = run_in_process('cifar10.cifar10_predict', [
      '--checkpoint_dir', os.path.dirname(checkpoint), str(folder)])
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith('%s: ' % (folder / 'cat.png'))
  skipped = [line for line in result.stderr.splitlines()
             if line.startswith('cifar10_predict: skipped ')]
  assert len(skipped) == len(SIZE)
  for name in SIZE:
    line, = [line for line in skipped if str(folder / name) + ':' in line]
    assert line.startswith('cifar10_predict: skipped %s: not an image it can '
                           'read (The ' % (folder / name))
    assert SIZE[name] in line and LIMIT in line


# Decodes each bomb in both forms in a fresh process and prints how much its
# resident memory peaked above where it was before, in MB: Linux resets the
# peak (VmHWM) when asked through /proc/self/clear_refs. Each form first
# reads a small picture of each kind, so that what TensorFlow sets up on a
# first run is not counted against a bomb.
MEMORY_PROGRAM = r'''
import json, os, sys
from cifar10 import trained_model
from tutorials_common import images
import tensorflow.compat.v1 as tf


def memory_mb(field):
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith(field + ':'):
        return int(line.split()[1]) / 1024.0


def reset_peak():
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
  except OSError:  # Then the peak is the process's: it still only grows.
    pass


folder = sys.argv[1]
graph = tf.Graph()
with graph.as_default():
  encoded = tf.placeholder(tf.string, [None])
  pixels = trained_model.decode_images(encoded)
sess = tf.Session(graph=graph)
for name in sorted(os.listdir(os.path.join(folder, 'small'))):
  path = os.path.join(folder, 'small', name)
  images.read_image_file(path)
  with open(path, 'rb') as f:
    sess.run(pixels, {encoded: [f.read()]})
grew = {}
for name in sorted(os.listdir(os.path.join(folder, 'bombs'))):
  path = os.path.join(folder, 'bombs', name)
  reset_peak()
  before = memory_mb('VmRSS')
  try:
    images.read_image_file(path)
  except images.ImageError:
    pass
  with open(path, 'rb') as f:
    try:
      sess.run(pixels, {encoded: [f.read()]})
    except tf.errors.InvalidArgumentError:
      pass
  grew[name] = memory_mb('VmHWM') - before
print(json.dumps(grew))
'''


@pytest.mark.skipif(not os.path.exists('/proc/self/status'),
                    reason='reads the resident memory from /proc')
def test_a_bomb_leaves_memory_bounded(tmp_path):
  _write_bombs(tmp_path / 'bombs')
  (tmp_path / 'small').mkdir()
  for name, data in [('small.png', png_bomb(64, 64)),
                     ('small.jpg', jpeg_bomb(64, 64)),
                     ('small.gif', gif_bytes(64, 64)),
                     ('small.webp', webp_bytes(64, 64))]:
    (tmp_path / 'small' / name).write_bytes(data)
  result = subprocess.run([sys.executable, '-c', MEMORY_PROGRAM,
                           str(tmp_path)], capture_output=True, text=True,
                          timeout=300, cwd=REPO_ROOT)
  assert result.returncode == 0, result.stderr
  grew = json.loads(result.stdout.strip().splitlines()[-1])
  assert sorted(grew) == sorted(SIZE)
  # Decoding one of them takes 300 MB for its RGB pixels alone.
  assert max(grew.values()) < 64, grew
