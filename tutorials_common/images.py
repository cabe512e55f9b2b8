"""The one image decoder: encoded bytes to RGB pixels, for every command.

`decode` is the graph form (usable in a tf.function, a map_fn or a
tf.compat.v1 graph: TensorFlow ops only, so a SavedModel's signature can hold
it); `read_image_file` the numpy form, for one file. Both decode by content,
whatever the file's name says: PNG, JPEG, GIF (its first frame), BMP and
WebP. Grey-scale becomes RGB and an alpha channel is dropped, so the result
is always uint8 [H, W, 3]; a JPEG's EXIF orientation is applied, so a phone
photo taken sideways comes out upright.

Both read the picture's size from its header first (the graph form with
TensorFlow ops, the numpy form in Python, to the same result) and refuse a
picture of more than MAX_PIXELS pixels before decoding it: a few dozen
kilobytes of PNG, GIF, JPEG or WebP can unpack to gigabytes of pixels. JPEG
XL, which TensorFlow also decodes, is refused (its size is not read here, so
it could not be checked), as is a GIF of more blocks than are counted.

Each caller resizes as it needs; `resize_for_cifar10` is the one resize rule
of the CIFAR-10 network (cifar10_predict, cifar10_export and the
feature-vector signature retraining uses). `encode_png` is the way back:
pixels to PNG bytes (the feature-map pictures, the draw page's images).
"""
import collections
import contextlib

import numpy as np
import tensorflow as tf

from tutorials_common.errors import UsageError
from tutorials_common.errors import one_line

FORMATS = 'PNG, JPEG, GIF, BMP or WebP'
CIFAR10_SIZE = 32

# The most pixels a picture may have. The networks see 32x32 (CIFAR-10),
# 28x28 (MNIST) or a feature model's few hundred pixels square, so a larger
# picture loses nothing by being made smaller first; the commands hold
# several float copies of a decoded picture, so their memory grows many
# bytes a pixel. 50 megapixels takes the full-resolution photos of
# 48-megapixel phone cameras and is well below Pillow's decompression-bomb
# guard (89 megapixels). read_image_file and decode take another limit.
MAX_PIXELS = 50 * 1000 * 1000

# What TensorFlow's decode_image tells the formats by: the first bytes.
_PNG = b'\x89PNG\r\n\x1a\n'
_JPEG = b'\xff\xd8\xff'
_GIF = b'GIF8'
_BMP = b'BM'
_RIFF, _WEBP = b'RIFF', b'WEBP'  # at 0 and at 8
# The chunk a PNG starts with (its length, 13, and its type) and the start
# code of a lossy WebP's key frame, which precedes its size.
_IHDR = b'\0\0\0\x0dIHDR'
_VP8 = b'\x9d\x01\x2a'
_JPEG_XL = (b'\xff\x0a', b'\x00\x00\x00\x0cJXL \r\n\x87\n')  # two forms

# The EXIF tag of a photo's orientation, the JPEG markers walked to find its
# segment (cameras write it first, or after JFIF's) and the IFD entries
# searched for it (cameras write a dozen or so, in tag order, orientation
# among the first).
_ORIENTATION_TAG = 0x0112
_MAX_SEGMENTS = 64
_MAX_IFD_ENTRIES = 128
# The most bytes read at one offset (the IFD entries).
_MOST_READ = 12 * _MAX_IFD_ENTRIES
# The most GIF blocks (and data sub-blocks, of up to 255 bytes each) walked
# to add up its frames: up to 8 MB of GIF. Each is a step of a loop, so a
# GIF of more, or of millions of empty blocks, is refused rather than walked
# for minutes.
_MAX_GIF_BLOCKS = 1 << 15

# The pictures refused whatever their size, by the number _header gives
# them (0: none), in the words that follow 'PATH is ' in the error.
_REFUSED = (
    None,
    'a JPEG XL picture, which the tutorials do not read: its size is not '
    'checked before decoding. Convert it to PNG or JPEG.',
    'a GIF of more than %d blocks, which the tutorials do not read: its '
    'frames could not all be counted before decoding. Convert it to PNG or '
    'make it smaller.' % _MAX_GIF_BLOCKS)
_JPEG_XL_REFUSED, _LONG_GIF_REFUSED = 1, 2


class ImageError(UsageError):
  """A file that cannot be read, or read as a picture."""


# The header read with TensorFlow ops, for the graph form.


def _int(value):
  return tf.constant(value, tf.int64)


class _Bytes(object):
  """The bytes of a scalar string tensor, read anywhere: 0 past its end."""

  def __init__(self, contents):
    self.length = tf.cast(tf.strings.length(contents), tf.int64)
    self._data = tf.io.decode_raw(
        tf.strings.join([contents, tf.constant(b'\0' * _MOST_READ)]), tf.uint8)

  def __call__(self, start, count):
    """int64 [count]: the bytes from start on."""
    start = tf.clip_by_value(tf.cast(start, tf.int64), 0, self.length)
    return tf.cast(tf.slice(self._data, tf.reshape(start, [1]), [count]),
                   tf.int64)


def _number(data, start, count, little_endian=True):
  """The unsigned integer of data[..., start:start + count] (int64 bytes)."""
  digits = data[..., start:start + count]
  if not little_endian:
    digits = tf.reverse(digits, [-1])
  weights = tf.constant([256 ** i for i in range(count)], tf.int64)
  return tf.reduce_sum(digits * weights, axis=-1)


def _head(contents, count):
  """The first count bytes of contents as a string, padded with zeros.

  Every signature below ends in a byte that is not 0, so the padding never
  completes one.
  """
  return tf.strings.join([tf.strings.substr(contents, 0, count),
                          tf.constant(b'\0' * count)])


def _is(head, signature, at=0):
  """Whether a _head holds signature at byte at."""
  return tf.equal(tf.strings.substr(head, at, len(signature)), signature)


def _colour_table_bytes(flags):
  """A GIF colour table's bytes, from its screen's or frame's flags."""
  size = tf.bitwise.left_shift(_int(3), tf.bitwise.bitwise_and(flags, 7) + 1)
  return tf.where(tf.bitwise.bitwise_and(flags, 0x80) > 0, size, _int(0))


def _gif_frame_pixels(read, is_gif):
  """(pixels, unchecked): the pixels of all a GIF's frames (0 unless
  is_gif), and whether its blocks ran past _MAX_GIF_BLOCKS before they were
  all seen. TensorFlow's GIF decoder (giflib's DGifSlurp) unpacks every
  frame, whatever its size, before it keeps the first. Walks the blocks as
  giflib does; stops where it would fail."""
  start = tf.where(is_gif, 13 + _colour_table_bytes(read(10, 1)[0]),
                   read.length)

  def walk(at, pixels, in_data, done):
    data = read(at, 10)
    lead = data[0]  # a block's introducer, or a data sub-block's size
    frame = tf.logical_not(in_data) & tf.equal(lead, 0x2C)
    extension = tf.logical_not(in_data) & tf.equal(lead, 0x21)
    step = tf.where(in_data, 1 + lead, tf.where(
        frame, 11 + _colour_table_bytes(data[9]), _int(2)))
    pixels += tf.where(frame, _number(data, 5, 2) * _number(data, 7, 2),
                       _int(0))
    done = tf.logical_not(in_data | frame | extension)  # the trailer, or junk
    in_data = tf.where(in_data, tf.not_equal(lead, 0), frame | extension)
    return at + step, pixels, in_data, done

  at, pixels, _, done = tf.while_loop(
      lambda at, pixels, in_data, done: tf.logical_not(done) &
      (at < read.length), walk,
      [start, _int(0), tf.constant(False), tf.constant(False)],
      maximum_iterations=_MAX_GIF_BLOCKS)
  return pixels, tf.logical_not(done) & (at < read.length)


def _jpeg_orientation(read):
  """int64 1-8: the EXIF Orientation of a JPEG (1, upright, without one).

  Walks the first _MAX_SEGMENTS markers, up to the first scan, for an APP1
  segment that starts 'Exif\0\0', then reads the tag in its TIFF header's
  first IFD, in the byte order the header names.
  """
  exif_signature = tf.constant([ord(c) for c in 'Exif\0\0'], tf.int64)

  def walk(at, exif_at, done):
    data = read(at, 10)
    marker = data[1]
    is_marker = tf.equal(data[0], 0xFF)
    fill = is_marker & tf.equal(marker, 0xFF)
    # Markers without a length: TEM, RSTn and SOI.
    alone = tf.equal(marker, 0x01) | ((marker >= 0xD0) & (marker <= 0xD8))
    exif = is_marker & tf.equal(marker, 0xE1) & tf.reduce_all(
        tf.equal(data[4:10], exif_signature))
    # Not a marker, the first scan, the end of the image, or the Exif data.
    stop = (tf.logical_not(is_marker) | tf.equal(marker, 0xDA) |
            tf.equal(marker, 0xD9) | exif)
    step = tf.where(fill, _int(1), tf.where(
        alone, _int(2), 2 + _number(data, 2, 2, False)))
    return (at + step, tf.where(exif, at, exif_at), stop)

  _, exif_at, _ = tf.while_loop(
      lambda at, exif_at, done: tf.logical_not(done) & (at < read.length),
      walk, [_int(2), _int(-1), tf.constant(False)],
      maximum_iterations=_MAX_SEGMENTS)
  segment_end = exif_at + 2 + _number(read(exif_at + 2, 2), 0, 2, False)
  tiff = exif_at + 10
  header = read(tiff, 8)
  little = tf.equal(header[0], 0x49) & tf.equal(header[1], 0x49)  # 'II'
  big = tf.equal(header[0], 0x4D) & tf.equal(header[1], 0x4D)  # 'MM'

  def number(data, start, count):
    return tf.where(little, _number(data, start, count),
                    _number(data, start, count, False))

  ifd = tiff + number(header, 4, 4)
  count = number(read(ifd, 2), 0, 2)
  entries = tf.reshape(read(ifd + 2, 12 * _MAX_IFD_ENTRIES),
                       [_MAX_IFD_ENTRIES, 12])
  index = tf.range(_MAX_IFD_ENTRIES, dtype=tf.int64)
  # Tag, then type (3: SHORT), then count, then the value, left-justified.
  match = ((index < count) & (ifd + 2 + 12 * (index + 1) <= segment_end) &
           tf.equal(number(entries, 0, 2), _ORIENTATION_TAG) &
           tf.equal(number(entries, 2, 2), 3))
  first = tf.argmax(tf.cast(match, tf.int32), output_type=tf.int64)
  value = number(entries, 8, 2)[first]
  known = ((exif_at >= 0) & (little | big) & tf.reduce_any(match) &
           (value >= 1) & (value <= 8))
  return tf.where(known, value, _int(1))


# Traced once per process, then called (and its graph copied) wherever decode
# is built: the walks make it a few hundred ops.
@tf.function(input_signature=[tf.TensorSpec([], tf.string)], autograph=False)
def _header(contents):
  """int64 [6] read from the header, before any decoding: width, height,
  the pixels decoding would hold (width x height; a GIF's frames may hold
  more), the EXIF orientation (1-8), why the picture is refused whatever its
  size (an index of _REFUSED; 0: it is not) and 1 for a WebP with an alpha
  channel (else 0). Width and height are 0 where the bytes are in no format
  decode reads: TensorFlow then refuses them."""
  read = _Bytes(contents)
  signatures = _head(contents, 32)
  head = read(0, 32)
  is_jpeg = _is(signatures, _JPEG)
  is_gif = _is(signatures, _GIF)
  is_webp = _is(signatures, _RIFF) & _is(signatures, _WEBP, 8)
  zero = _int(0)

  def signed(value):  # a 32-bit two's-complement number, made positive
    return tf.abs(tf.where(value >= 2 ** 31, value - 2 ** 32, value))

  def pair(width, height):
    return tf.stack([width, height])

  # JPEG: the frame header, as libjpeg reads it (which only a JPEG may be
  # given to), and the EXIF orientation.
  jpeg = tf.cond(is_jpeg, lambda: tf.reverse(
      tf.io.extract_jpeg_shape(contents, tf.int64)[:2], [0]),
                 lambda: pair(zero, zero))
  orientation = tf.where(is_jpeg, _jpeg_orientation(read), _int(1))
  # WebP: the canvas of an extended file (VP8X), else the size in the
  # lossy (VP8) or lossless (VP8L) bitstream's header.
  lossless = _number(head, 21, 4)
  webp_chunk = tf.strings.substr(signatures, 12, 4)
  webp = tf.where(
      tf.equal(webp_chunk, b'VP8X'),
      pair(1 + _number(head, 24, 3), 1 + _number(head, 27, 3)), tf.where(
          tf.equal(webp_chunk, b'VP8 ') & _is(signatures, _VP8, 23),
          tf.bitwise.bitwise_and(pair(_number(head, 26, 2),
                                      _number(head, 28, 2)), 0x3FFF),
          tf.where(tf.equal(webp_chunk, b'VP8L'), 1 + tf.bitwise.bitwise_and(
              pair(lossless, tf.bitwise.right_shift(lossless, 14)), 0x3FFF),
                   pair(zero, zero))))
  candidates = [
      # PNG: the IHDR chunk, which must come first (libpng refuses a file
      # without, whatever the size its bytes would say).
      (_is(signatures, _PNG) & _is(signatures, _IHDR, 8),
       pair(_number(head, 16, 4, False), _number(head, 20, 4, False))),
      (is_jpeg, jpeg),
      # GIF: the logical screen, the size of the picture decode gives.
      (is_gif, pair(_number(head, 6, 2), _number(head, 8, 2))),
      # BMP: the info header's (negative for a picture stored top down).
      (_is(signatures, _BMP), pair(signed(_number(head, 18, 4)),
                                   signed(_number(head, 22, 4)))),
      (is_webp, webp)]
  size = pair(zero, zero)
  for is_format, format_size in reversed(candidates):
    size = tf.where(is_format, format_size, size)
  frame_pixels, unchecked = _gif_frame_pixels(read, is_gif)
  pixels = tf.maximum(size[0] * size[1], frame_pixels)
  is_jpeg_xl = _is(signatures, _JPEG_XL[0]) | _is(signatures, _JPEG_XL[1])
  refused = tf.where(is_jpeg_xl, _int(_JPEG_XL_REFUSED), tf.where(
      unchecked, _int(_LONG_GIF_REFUSED), zero))
  # The alpha flag of an extended WebP's header, or the alpha bit of a
  # lossless one's: TensorFlow decodes such a file only as RGBA.
  webp_alpha = is_webp & tf.where(
      tf.equal(webp_chunk, b'VP8X'),
      tf.bitwise.bitwise_and(head[20], 0x10) > 0,
      tf.equal(webp_chunk, b'VP8L') &
      (tf.bitwise.bitwise_and(tf.bitwise.right_shift(lossless, 28), 1) > 0))
  return tf.stack([size[0], size[1], pixels, orientation, refused,
                   tf.cast(webp_alpha, tf.int64)])


def _limit_words(max_pixels):
  return ('the %g megapixels the tutorials decode (MAX_PIXELS in '
          'tutorials_common/images.py): make it smaller first' %
          (max_pixels / 1e6))


def _orient(image, orientation):
  """image as EXIF orientation 1-8 says to show it: 5-8 swap its rows and
  columns (6 and 8 then turn it a quarter clockwise, anticlockwise), then
  2, 3, 6 and 7 reverse its columns, 3, 4, 7 and 8 its rows."""
  swap = orientation >= 5
  image = tf.transpose(image, tf.where(swap, [1, 0, 2], [0, 1, 2]))
  columns = tf.reduce_any(tf.equal(orientation, [2, 3, 6, 7]))
  rows = tf.reduce_any(tf.equal(orientation, [3, 4, 7, 8]))
  return tf.reverse(image,
                    tf.boolean_mask([0, 1], tf.stack([rows, columns])))


def decode(contents, max_pixels=MAX_PIXELS):
  """A scalar string tensor of encoded image bytes -> uint8 [H, W, 3].

  A picture of more than max_pixels pixels (or one refused whatever its
  size: JPEG XL, a GIF of too many blocks to count its frames) fails an
  assertion on its header before it is decoded: an InvalidArgumentError
  whose message says why (its size and the limit). Decoded as RGB (then
  made grey by whoever wants grey: TensorFlow's BMP decoder refuses
  channels=1), a WebP with an alpha channel as RGBA, its alpha then
  dropped; a JPEG is turned or mirrored as its EXIF orientation says.
  """
  contents = tf.convert_to_tensor(contents, tf.string)
  width, height, pixels, orientation, refused, webp_alpha = tf.unstack(
      _header(contents))
  limit = _limit_words(max_pixels)
  message = tf.where(
      refused > 0,
      tf.gather(['The picture is %s' % words for words in _REFUSED[1:]],
                tf.maximum(refused - 1, 0)),
      tf.where(pixels > width * height, tf.strings.format(
          'The GIF is {}x{} pixels, but its frames hold {}, more than %s.' %
          limit, (width, height, pixels)), tf.strings.format(
              'The picture is {}x{} pixels, more than %s.' % limit,
              (width, height))))
  check = tf.debugging.Assert(
      tf.equal(refused, 0) & (pixels <= max_pixels), [message])
  with tf.control_dependencies([check]):
    image = tf.cond(
        tf.cast(webp_alpha, tf.bool),
        lambda: tf.io.decode_image(contents, channels=4,
                                   expand_animations=False)[:, :, :3],
        lambda: tf.io.decode_image(contents, channels=3,
                                   expand_animations=False))
  image = _orient(image, orientation)
  image.set_shape([None, None, 3])
  return image


# The header read in Python, for the numpy form: the same fields as _header
# reads with TensorFlow ops (the tests hold the two to each other), without
# building a graph for it. A JPEG's size is libjpeg's, read by TensorFlow
# (tf.io.extract_jpeg_shape): libjpeg skips bytes between segments that a
# walk of the markers would stop at.


def _py_bytes(contents, start, count):
  """contents[start:start + count], padded with zeros past its end."""
  return contents[max(start, 0):max(start, 0) + count].ljust(count, b'\0')


def _py_number(contents, start, count, little_endian=True):
  return int.from_bytes(_py_bytes(contents, start, count),
                        'little' if little_endian else 'big')


def _py_format(contents):
  """The format TensorFlow's decode_image finds in contents, or None."""
  head = contents[:16]
  for name, signature in [('jpeg', _JPEG), ('png', _PNG), ('gif', _GIF),
                          ('bmp', _BMP), ('jpeg xl', _JPEG_XL[0]),
                          ('jpeg xl', _JPEG_XL[1])]:
    if head.startswith(signature):
      return name
  if head.startswith(_RIFF) and head[8:12] == _WEBP:
    return 'webp'
  return None


def _py_colour_table_bytes(flags):
  return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _py_gif_frame_pixels(contents):
  """_gif_frame_pixels of a GIF, in Python, step for step."""
  at = 13 + _py_colour_table_bytes(_py_number(contents, 10, 1))
  pixels, in_data = 0, False
  for _ in range(_MAX_GIF_BLOCKS):
    if at >= len(contents):
      return pixels, False
    lead = contents[at]  # a block's introducer, or a data sub-block's size
    if in_data:
      at, in_data = at + 1 + lead, lead != 0
    elif lead == 0x2C:
      data = _py_bytes(contents, at, 10)
      pixels += _py_number(data, 5, 2) * _py_number(data, 7, 2)
      at, in_data = at + 11 + _py_colour_table_bytes(data[9]), True
    elif lead == 0x21:
      at, in_data = at + 2, True
    else:  # the trailer, or junk
      return pixels, False
  return pixels, at < len(contents)


def _py_jpeg_orientation(contents):
  """_jpeg_orientation, in Python."""
  at, exif_at = 2, None
  for _ in range(_MAX_SEGMENTS):
    if at >= len(contents):
      break
    data = _py_bytes(contents, at, 10)
    marker = data[1]
    if data[0] != 0xFF or marker in (0xDA, 0xD9):
      break
    if marker == 0xE1 and data[4:10] == b'Exif\0\0':
      exif_at = at
      break
    if marker == 0xFF:
      at += 1
    elif marker == 0x01 or 0xD0 <= marker <= 0xD8:
      at += 2
    else:
      at += 2 + _py_number(data, 2, 2, False)
  if exif_at is None:
    return 1
  segment_end = exif_at + 2 + _py_number(contents, exif_at + 2, 2, False)
  tiff = exif_at + 10
  order = contents[tiff:tiff + 2]
  if order not in (b'II', b'MM'):
    return 1
  little = order == b'II'
  ifd = tiff + _py_number(contents, tiff + 4, 4, little)
  count = _py_number(contents, ifd, 2, little)
  for index in range(min(count, _MAX_IFD_ENTRIES)):
    entry = ifd + 2 + 12 * index
    if entry + 12 > segment_end:
      break
    if (_py_number(contents, entry, 2, little) == _ORIENTATION_TAG and
        _py_number(contents, entry + 2, 2, little) == 3):
      value = _py_number(contents, entry + 8, 2, little)
      return value if 1 <= value <= 8 else 1
  return 1


_Header = collections.namedtuple(
    '_Header', 'format width height pixels orientation refused webp_alpha')


def _py_header(contents):
  """A _Header of encoded bytes, read in Python: _header's fields, width
  and height 0 where the format is none decode reads, and, for JPEG, until
  libjpeg has read them."""
  fmt = _py_format(contents)
  width = height = pixels = webp_alpha = refused = 0
  orientation = 1
  if fmt == 'png' and contents[8:16] == _IHDR:
    width, height = (_py_number(contents, 16, 4, False),
                     _py_number(contents, 20, 4, False))
  elif fmt == 'jpeg':
    orientation = _py_jpeg_orientation(contents)
  elif fmt == 'gif':
    width, height = _py_number(contents, 6, 2), _py_number(contents, 8, 2)
  elif fmt == 'bmp':
    width, height = (abs(int.from_bytes(_py_bytes(contents, at, 4), 'little',
                                        signed=True)) for at in (18, 22))
  elif fmt == 'webp':
    chunk, lossless = contents[12:16], _py_number(contents, 21, 4)
    if chunk == b'VP8X':
      width, height = (1 + _py_number(contents, 24, 3),
                       1 + _py_number(contents, 27, 3))
      webp_alpha = int(bool(_py_number(contents, 20, 1) & 0x10))
    elif chunk == b'VP8 ' and contents[23:26] == _VP8:
      width, height = (_py_number(contents, 26, 2) & 0x3FFF,
                       _py_number(contents, 28, 2) & 0x3FFF)
    elif chunk == b'VP8L':
      width, height = 1 + (lossless & 0x3FFF), 1 + ((lossless >> 14) & 0x3FFF)
      webp_alpha = (lossless >> 28) & 1
  pixels = width * height
  if fmt == 'gif':
    frame_pixels, unchecked = _py_gif_frame_pixels(contents)
    pixels = max(pixels, frame_pixels)
    refused = _LONG_GIF_REFUSED if unchecked else 0
  if fmt == 'jpeg xl':
    refused = _JPEG_XL_REFUSED
  return _Header(fmt, width, height, pixels, orientation, refused,
                 webp_alpha)


# What each EXIF orientation asks of the stored pixels, numpy's way (_orient
# is TensorFlow's).
_SHOWN_UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: a.transpose(1, 0, 2)[:, ::-1],
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: a.transpose(1, 0, 2)[::-1],
}


@contextlib.contextmanager
def _tensorflow(contents):
  """Yields run(op): numpy op(contents as a string tensor), eager or, in
  tf.compat.v1 graph mode (the commands that run graphs), in a graph and
  session of its own."""
  if tf.executing_eagerly():
    tensor = tf.constant(contents)
    yield lambda op: op(tensor).numpy()
    return
  with tf.Graph().as_default():
    encoded = tf.compat.v1.placeholder(tf.string, [])
    with tf.compat.v1.Session() as sess:
      yield lambda op: sess.run(op(encoded), {encoded: contents})


def read_image_file(path, max_pixels=MAX_PIXELS):
  """uint8 [H, W, 3] RGB pixels of an image file, upright, or ImageError
  naming it: a file that cannot be read or decoded, one refused whatever its
  size (JPEG XL, a GIF of too many blocks to count its frames), or a picture
  of more than max_pixels pixels (found from its header, before decoding)."""
  try:
    with open(path, 'rb') as f:
      contents = f.read()
  except (IOError, OSError) as e:
    raise ImageError('Cannot read image %s: %s' % (path, e.strerror or e))
  header = _py_header(contents)
  if header.refused:
    raise ImageError('%s is %s' % (path, _REFUSED[header.refused]))
  try:
    with _tensorflow(contents) as run:
      if header.format == 'jpeg':
        height, width, _ = run(tf.io.extract_jpeg_shape)
        header = header._replace(width=int(width), height=int(height),
                                 pixels=int(width) * int(height))
      if header.pixels > max_pixels:
        frames = (', but its frames hold %d' % header.pixels
                  if header.pixels > header.width * header.height else '')
        raise ImageError('%s is %dx%d pixels%s, more than %s.' % (
            path, header.width, header.height, frames,
            _limit_words(max_pixels)))
      pixels = run(lambda c: tf.io.decode_image(
          c, channels=4 if header.webp_alpha else 3,
          expand_animations=False))[:, :, :3]
  except ImageError:
    raise
  except (tf.errors.OpError, ValueError) as e:
    raise _unreadable(path, e)
  return np.ascontiguousarray(_SHOWN_UPRIGHT[header.orientation](pixels))


def _unreadable(path, error):
  return ImageError('%s is not a %s image that can be read (%s).' %
                    (path, FORMATS, one_line(error)))


def to_grey(pixels):
  """float32 [H, W] grey levels 0-255 of uint8 [H, W, 3] RGB pixels, with
  TensorFlow's weights (tf.image.rgb_to_grayscale)."""
  weights = np.array([0.2989, 0.5870, 0.1140], np.float32)
  grey = (np.asarray(pixels, np.float32) / np.float32(255.0)) @ weights
  # As rgb_to_grayscale converts back to uint8 (convert_image_dtype).
  return np.floor(grey * np.float32(255.5)).astype(np.float32)


def resize_for_cifar10(pixels):
  """float [N, H, W, 3] pixels 0-255 -> float32 [N, 32, 32, 3], 0-255.

  Antialiased bilinear interpolation, which averages when shrinking; a 32x32
  image is unchanged.
  """
  resized = tf.image.resize(tf.cast(pixels, tf.float32),
                            [CIFAR10_SIZE, CIFAR10_SIZE], method='bilinear',
                            antialias=True)
  return tf.clip_by_value(resized, 0.0, 255.0)


def encode_png(pixels):
  """PNG bytes of a uint8 HxW (grey) or HxWx3 (colour) array."""
  pixels = np.asarray(pixels, np.uint8)
  if pixels.ndim == 2:
    pixels = pixels[:, :, None]
  # A graph of its own, so that it works whether or not eager mode is on.
  with tf.Graph().as_default():
    with tf.compat.v1.Session() as sess:
      return sess.run(tf.io.encode_png(pixels))
