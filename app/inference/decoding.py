"""Turn untrusted encoded image bytes or base64 text into RGB PIL images.

Every limit is checked before the work it protects: the byte count before
anything is parsed, the base64 length before it is decoded, the pixel
count from the image header and the scan count of a JPEG from its marker
segments before any pixel is decoded, and the memory a decode will need
against a process-wide :class:`~app.inference.decode_budget.DecodeBudget`
before it starts. A decode that still runs too long is stopped between
two reads of its input. Whatever is wrong with the input becomes a
:class:`~app.errors.ServiceError`, never an unhandled exception.
"""

import base64
import binascii
import bisect
import collections
import contextlib
import io
import re
import struct
import time
import types
import warnings

import numpy as np
from PIL import Image, ImageFile

from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from app.inference.memory import release_free_memory

# MPO is how Pillow names a JPEG that carries extra pictures (most phone
# cameras write one); its first picture is an ordinary JPEG.
ALLOWED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP"})
_DRAFTABLE_FORMATS = frozenset({"JPEG", "MPO"})
# Real encoders write far fewer scans: libjpeg's progressive mode (what
# Pillow, cjpeg and most libraries use) writes 10 for colour, 6 for grey
# and 18 for CMYK, and mozjpeg's optimised progression wrote 3 to 17 on
# our test photos. libjpeg decodes every scan over the whole coefficient
# buffer however few bytes it has, up to 50 ms per scan for 40 Mpixels,
# so a scan of a few dozen bytes repeated is a CPU bomb. 32 allows any of
# those encoders with room to spare; past it an image is refused before
# any decoding, rather than cut off by the CPU deadline after seconds.
DEFAULT_MAX_JPEG_SCANS = 32
# Seconds of CPU for opening, decoding and converting one image, counted
# on the decoding thread only, so that a busy server does not make an
# image look costlier than it is. The slowest legitimate images, 40-Mpixel
# PNGs and progressive CMYK JPEGs, take 1 to 1.3 s on a 2-core server;
# with the rest of a request, any image is answered within 2 s.
DEFAULT_DECODE_TIMEOUT = 1.5
# Formats whose decoding costs more per pixel than the service-wide limit
# was set for. Pillow decodes WebP in one uninterruptible call that holds
# about 12 bytes per pixel (libwebp's canvas, a copy as bytes, the image),
# and run-length BMPs in pure Python at about 100 ns per pixel, while an
# uncompressed BMP under 10 MiB has at most 10.5 Mpixels anyway.
DEFAULT_FORMAT_PIXEL_LIMITS = types.MappingProxyType({
    "WEBP": 16_777_216,
    "BMP": 10_000_000,
})
# EXIF orientations that turn the stored image by 90 or 270 degrees.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION_TAG = 0x0112
# How the stored pixels are turned for each EXIF orientation, as in
# ImageOps.exif_transpose.
_ORIENTATION_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_TRANSPARENT_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
# Pillow keeps every mode not listed here in four bytes per pixel.
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2,
                    "I;16B": 2, "I;16N": 2}
# Full-size buffers a decoder holds besides the image itself: libwebp's
# canvas and its copy as bytes; a run-length BMP's rows as a bytearray
# and their copy as bytes.
_DECODER_COPIES = {"WEBP": 2, "BMP": 2}
_WHITE = (255, 255, 255)
# Images other than JPEG are averaged down by a whole factor as they are
# converted, to no less than this many times the model's input size. The
# model's bilinear resize then does the rest. Reducing to the input size
# itself would be a box filter where the resize is a wider triangle one,
# and changed the input tensor of large photos by up to 0.035 (a mean of
# 4.5 of 255 grey levels); at three times it changed it by under 0.01,
# and the shrunk image is still under 2 MB.
_REDUCING_GAP = 3
# Converting is done a band of rows at a time so that no full-size
# intermediate exists; a band of about 4 MiB keeps the per-band overhead
# negligible.
_BAND_BYTES = 4 * 1024 * 1024
# Pillow's decoders pull their input in blocks of this many bytes; the
# CPU deadline is checked between blocks. Smaller blocks stop a bomb
# sooner but cost a decoder call each: a 12-Mpixel JPEG decoded 7% slower
# in 4 KiB blocks and 19% in 1 KiB ones, while 16 and 64 KiB were alike.
_READ_BLOCK = 16 * 1024
# Reads shorter than this come from decoders that pull a byte or a
# header at a time (run-length BMP, PNG chunk headers); the clock, a
# system call, is read only every _READS_PER_CHECK of them.
_SMALL_READ = 64
_READS_PER_CHECK = 64
# After a decode this large, free pages are handed back to the system.
_RELEASE_MEMORY_ABOVE = 32 * 1024 * 1024
# Pillow parses a JPEG's header in Python, about 1 us per fill byte and 3
# us per segment: ten megabytes of either would cost seconds before the
# deadline could be checked often enough. Real files have a few hundred
# segments at most (an ICC profile may take 255) and no padding to speak
# of.
_MAX_JPEG_SEGMENTS = 1024
_MAX_JPEG_PADDING = 64 * 1024
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = 0xD9
_JPEG_SOS = 0xDA
# Start-of-frame markers: every 0xC0-0xCF but DHT, JPG and DAC.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_JPEG_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
# Markers without a length: TEM, RST0-7 and SOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
# A marker is 0xFF and a code; more 0xFF before it are fill bytes. The
# patterns match one 0xFF only, as a run of them would make the search
# quadratic. Inside entropy-coded data 0xFF00 is a stuffed 0xFF byte and
# 0xFFD0-0xFFD7 are restart markers, neither of which ends the scan.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xff]")
_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_COEFFICIENT_BYTES = 64 * 2
# Pillow's plugins report malformed input with a wide, undocumented range
# of exceptions; each of them means the client sent a broken image.
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError,
                   KeyError, TypeError, ZeroDivisionError, struct.error)
_DATA_URL_PREFIX = re.compile(
    r"data:image/[a-z0-9.+-]+(?:;[a-z0-9.+-]+=[^;,]*)*;base64,",
    re.IGNORECASE)

JpegLayout = collections.namedtuple(
    "JpegLayout",
    "scans segments progressive coefficient_bytes scan_offsets")


def configure_pillow(max_image_pixels):
    """Set Pillow's process-wide decoding limits once, at service start.

    ``Image.MAX_IMAGE_PIXELS`` is a module global shared by every thread,
    so it is set here once rather than changed around each decode. With
    the bomb warning turned into an error, Pillow itself refuses any image
    over the limit as it opens the header. :func:`decode_image` still
    checks its own ``max_image_pixels`` from the header on every call:
    the global may be unset (tests, scripts), raised by another library,
    or simply differ from the limit a caller passes.
    """
    Image.MAX_IMAGE_PIXELS = max_image_pixels
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    # A truncated upload must be refused, not padded with grey pixels.
    ImageFile.LOAD_TRUNCATED_IMAGES = False


def decode_base64(text, max_image_bytes):
    """Decode base64 text (standard or URL-safe) into the image's bytes.

    Padding is optional, ASCII whitespace is ignored and a leading
    ``data:image/...;base64,`` is dropped. The decoded size is worked out
    from the text's length and refused before any decoding when it is over
    ``max_image_bytes``.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise _invalid_base64("contains non-ASCII bytes") from None
    if not isinstance(text, str):
        raise _invalid_base64("must be a string")
    text = "".join(text.split())
    prefix = _DATA_URL_PREFIX.match(text)
    if prefix:
        text = text[prefix.end():]
    elif text[:5].lower() == "data:":
        raise _invalid_base64("is a data URL but not a base64 image one")
    unpadded = text.rstrip("=")
    if len(text) - len(unpadded) > 2 or len(unpadded) % 4 == 1:
        raise _invalid_base64("has a length no base64 text can have")
    if not unpadded:
        raise _invalid_base64("is empty")
    # Four base64 characters carry three bytes; a partial group carries
    # one byte fewer than its characters.
    decoded_size = len(unpadded) * 3 // 4
    if decoded_size > max_image_bytes:
        raise PayloadTooLarge(
            f"The decoded image would be {decoded_size} bytes; the limit is "
            f"{max_image_bytes}.", code="image_too_large")
    if "-" in unpadded or "_" in unpadded:
        if "+" in unpadded or "/" in unpadded:
            raise _invalid_base64("mixes the standard and URL-safe alphabets")
        altchars = b"-_"
    else:
        altchars = None
    padded = unpadded + "=" * (-len(unpadded) % 4)
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid_base64("contains characters outside base64") from None


def decode_image(data, max_image_bytes, max_image_pixels, target_size=None,
                 *, max_jpeg_scans=DEFAULT_MAX_JPEG_SCANS,
                 decode_timeout=DEFAULT_DECODE_TIMEOUT,
                 format_pixel_limits=DEFAULT_FORMAT_PIXEL_LIMITS,
                 budget=None):
    """Decode image bytes into a fully loaded, upright RGB PIL image.

    JPEG, PNG, WEBP, GIF and BMP are accepted; an animation gives its first
    frame. The EXIF orientation is applied, and transparent pixels are laid
    on white. Given ``target_size`` as (width, height), the image comes out
    shrunk, never below that size, which makes a later resize to it
    cheaper: a JPEG is scaled down by libjpeg while it decodes, other
    formats are averaged down by a whole factor, to no less than three
    times that size, band by band as they are converted to RGB, so no
    full-size RGB copy is ever made.

    ``max_jpeg_scans`` bounds the scans of a JPEG, counted before
    decoding. ``decode_timeout`` is the CPU seconds the calling thread may
    spend opening, decoding and converting the image (None for no
    limit).
    ``format_pixel_limits`` maps a format to a pixel limit lower than
    ``max_image_pixels``. Given a
    :class:`~app.inference.decode_budget.DecodeBudget`, the bytes the
    decode is expected to need are reserved from it for its duration.

    Raise PayloadTooLarge (``image_too_large``, ``image_too_many_pixels``,
    ``image_too_complex``), UnsupportedMediaType
    (``unsupported_image_format``), InvalidInput (``invalid_image``) or,
    from the budget, Unavailable (``decode_busy``).
    """
    if target_size is not None and min(target_size) < 1:
        raise ValueError(f"target_size must be positive, not {target_size}")
    if len(data) > max_image_bytes:
        raise PayloadTooLarge(
            f"The image is {len(data)} bytes; the limit is "
            f"{max_image_bytes}.", code="image_too_large")
    if not data:
        raise InvalidInput("The image is empty.", code="invalid_image")
    jpeg = None
    if data[:3] == _JPEG_SOI:
        jpeg = inspect_jpeg(data, max_jpeg_scans)
    reader = _DeadlineReader(data, decode_timeout,
                             () if jpeg is None else jpeg.scan_offsets)
    try:
        return _decode(reader, jpeg, max_image_pixels, target_size,
                       format_pixel_limits, budget)
    except _DecodeTimeout as error:
        raise _too_complex(
            f"Decoding the image took more than {decode_timeout} s of "
            "CPU.") from error
    except (Image.DecompressionBombError,
            Image.DecompressionBombWarning) as error:
        raise _too_many_pixels(max_image_pixels) from error
    except _DECODER_ERRORS as error:
        raise InvalidInput(
            "The image could not be decoded; it may be truncated or "
            "corrupt.", code="invalid_image") from error


def inspect_jpeg(data, max_scans=DEFAULT_MAX_JPEG_SCANS):
    """Walk the marker segments of a JPEG's first picture, decoding nothing.

    Segment payloads are skipped by their lengths and entropy-coded data
    up to the next marker that is neither a stuffed 0xFF nor a restart
    marker, so bytes that merely look like markers are not counted.
    Return a :data:`JpegLayout`: the scans, the marker segments, whether
    the frame is progressive, the bytes of the coefficient buffer libjpeg
    holds for a multi-scan image (0 for a single scan) and the offset of
    each scan's SOS marker.
    Malformed or truncated data ends the walk quietly, for the decoder to
    report. Raise PayloadTooLarge (``image_too_complex``) past
    ``max_scans`` scans, or past the segments and padding bytes any real
    encoder writes.
    """
    segments = padding = 0
    scan_offsets = []
    frame = None
    pattern = _JPEG_MARKER
    position = 2
    while True:
        match = pattern.search(data, position)
        if match is None:
            break
        if pattern is _JPEG_MARKER:
            # Fill bytes (0xFF) or junk between two segments.
            padding += match.start() - position
            if padding > _MAX_JPEG_PADDING:
                raise _too_complex(
                    f"The JPEG has more than {_MAX_JPEG_PADDING} bytes of "
                    "padding between its segments.")
        code = data[match.start() + 1]
        position = match.end()
        pattern = _JPEG_MARKER
        if code == _JPEG_EOI:
            break
        segments += 1
        if segments > _MAX_JPEG_SEGMENTS:
            raise _too_complex(
                f"The JPEG has more than {_MAX_JPEG_SEGMENTS} marker "
                "segments.")
        if code in _JPEG_STANDALONE:
            continue
        length = int.from_bytes(data[position:position + 2], "big")
        if length < 2:
            break
        if code in _JPEG_FRAMES and frame is None:
            frame = (code, data[position + 2:position + length])
        elif code == _JPEG_SOS:
            scan_offsets.append(match.start())
            if len(scan_offsets) > max_scans:
                raise _too_complex(
                    f"The JPEG has more than {max_scans} scans.")
            pattern = _JPEG_SCAN_END
        position += length
    scans = len(scan_offsets)
    progressive = frame is not None and frame[0] in _JPEG_PROGRESSIVE
    coefficient_bytes = 0
    if frame is not None and (progressive or scans > 1):
        coefficient_bytes = _coefficient_bytes(*frame)
    return JpegLayout(scans, segments, progressive, coefficient_bytes,
                      tuple(scan_offsets))


def _coefficient_bytes(code, frame):
    """Return the bytes of libjpeg's whole-image DCT coefficient buffer.

    libjpeg needs it for any image of more than one scan, whatever scale
    it decodes to: 64 16-bit coefficients per 8x8 block, for each
    component at its own sampling, rounded up to whole MCUs.
    """
    if code in _JPEG_LOSSLESS or len(frame) < 6:
        return 0
    height, width = struct.unpack(">HH", frame[1:5])
    components = frame[6:6 + 3 * frame[5]]
    # Each component is an id, a byte of sampling factors and a table.
    sampling = [(byte >> 4, byte & 0x0F) for byte in components[1::3]]
    if not sampling or min(min(pair) for pair in sampling) < 1:
        return 0
    max_h = max(h for h, _ in sampling)
    max_v = max(v for _, v in sampling)
    total = 0
    for h, v in sampling:
        columns = _ceil_div(_ceil_div(width * h, max_h), 8)
        rows = _ceil_div(_ceil_div(height * v, max_v), 8)
        total += (_ceil_div(columns, h) * h * _ceil_div(rows, v) * v
                  * _JPEG_COEFFICIENT_BYTES)
    return total


class _DecodeTimeout(Exception):
    """The decoding thread spent its CPU allowance."""


class _DeadlineReader(io.BytesIO):
    """Image bytes in memory whose reads fail once the CPU time is spent.

    Pillow's decoders, in C or in Python, pull their input through
    ``read``; failing a read is how a decode that runs too long is
    stopped between two blocks of input. A read never runs past the next
    of the given ``stops``: libjpeg decodes a whole scan in one call
    when its bytes are there, and a scan of a few dozen bytes can cost
    50 ms, so stopping each read at the next scan lets the deadline be
    checked between any two scans.
    """

    def __init__(self, data, seconds, stops=()):
        """Serve data; allow the current thread ``seconds`` of CPU."""
        super().__init__(data)
        self._deadline = (None if seconds is None
                          else time.thread_time() + seconds)
        self._stops = sorted(stops)
        self._small_reads = 0

    def read(self, size=-1):
        """Read like BytesIO, checking the deadline, up to the next stop."""
        if self._deadline is not None:
            if size is None or size < 0 or size >= _SMALL_READ:
                self.check()
            else:
                self._small_reads += 1
                if self._small_reads % _READS_PER_CHECK == 0:
                    self.check()
        if self._stops:
            position = self.tell()
            index = bisect.bisect_right(self._stops, position)
            if index < len(self._stops):
                available = self._stops[index] - position
                if size is None or size < 0 or size > available:
                    size = available
        return super().read(size)

    def check(self):
        """Raise _DecodeTimeout if the thread has used up its CPU time."""
        if self._deadline is not None and time.thread_time() > self._deadline:
            raise _DecodeTimeout


def _decode(reader, jpeg, max_image_pixels, target_size,
            format_pixel_limits, budget):
    """Open, check, reserve memory for, load and convert one image."""
    image = result = None
    need = 0
    reserved = False
    try:
        image = Image.open(reader)
        _check_header(image, max_image_pixels, format_pixel_limits)
        if target_size is not None and image.format in _DRAFTABLE_FORMATS:
            _request_draft(image, target_size)
        need = estimate_decode_bytes(image, target_size, jpeg)
        reservation = (contextlib.nullcontext() if budget is None
                       else budget.reserve(need))
        with reservation:
            reserved = True
            image.decodermaxblock = _READ_BLOCK
            image.load()
            # A decoder that reads all its input at once (WebP) is only
            # caught here, after the fact.
            reader.check()
            orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
            factor = _reduce_factor(image.size, target_size, orientation)
            result = _to_rgb(image, factor, reader.check)
            if result is not image:
                image.close()
        transpose = _ORIENTATION_TRANSPOSES.get(orientation)
        if transpose is not None:
            result = result.transpose(transpose)
        return result
    finally:
        if image is not None and image is not result:
            # Frees the pixels now rather than when the traceback that
            # may still refer to the image is dropped.
            image.close()
        if reserved and need > _RELEASE_MEMORY_ABOVE:
            release_free_memory()


def estimate_decode_bytes(image, target_size=None, jpeg=None):
    """Return the peak bytes decoding an opened image will take.

    Counts the decoded image in Pillow's layout, the full-size buffers
    its decoder keeps besides it, libjpeg's coefficient buffer for a
    multi-scan JPEG (from :func:`inspect_jpeg`), and what conversion to
    RGB holds at once: the shrunk result and one band of rows.
    """
    width, height = image.size
    pixels = width * height
    decoded = (pixels * _BYTES_PER_PIXEL.get(image.mode, 4)
               * (1 + _DECODER_COPIES.get(image.format, 0)))
    if jpeg is not None:
        decoded += jpeg.coefficient_bytes
    # The orientation is not known before a PNG is loaded; assume the one
    # that shrinks least.
    factor = min(_reduce_factor(image.size, target_size, orientation)
                 for orientation in (1, 6))
    result = _ceil_div(width, factor) * _ceil_div(height, factor) * 4
    # A band, its RGBA form and its RGB form.
    band = 3 * 4 * width * _band_rows(width, factor)
    return decoded + result + min(band, 3 * 4 * pixels)


def _check_header(image, max_image_pixels, format_pixel_limits):
    """Refuse a format or a pixel count we will not decode, from the header."""
    if image.format not in ALLOWED_FORMATS:
        raise UnsupportedMediaType(
            f"Images in {image.format} format are not accepted; send JPEG, "
            "PNG, WEBP, GIF or BMP.", code="unsupported_image_format")
    width, height = image.size
    if width * height > max_image_pixels:
        raise _too_many_pixels(max_image_pixels)
    family = "JPEG" if image.format in _DRAFTABLE_FORMATS else image.format
    format_limit = format_pixel_limits.get(family)
    if format_limit is not None and width * height > format_limit:
        raise _too_many_pixels(format_limit, family)


def _request_draft(image, target_size):
    """Let libjpeg decode at the smallest scale still covering target_size."""
    width, height = target_size
    # Draft works on the stored image, which EXIF may later turn by 90
    # degrees; the size asked for must then be turned the same way.
    orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    image.draft("RGB", (width, height))


def _reduce_factor(size, target_size, orientation):
    """Return the largest whole factor keeping size >= 3 x target_size."""
    if target_size is None:
        return 1
    target_width, target_height = target_size
    # The target is upright; the stored image may be turned by 90 degrees.
    if orientation in _SWAPPING_ORIENTATIONS:
        target_width, target_height = target_height, target_width
    width, height = size
    return max(1, min(width // (_REDUCING_GAP * target_width),
                      height // (_REDUCING_GAP * target_height)))


def _band_rows(width, factor):
    """Return how many rows to convert at once: a multiple of factor."""
    return factor * max(1, _BAND_BYTES // (4 * width * factor))


def _to_rgb(image, factor=1, check=None):
    """Return the image as RGB, shrunk by factor, transparency on white.

    Works a band of rows at a time: each band is converted, then averaged
    down by ``factor`` (Image.reduce: each output pixel is the mean of a
    factor x factor box), then pasted into the result, so memory beyond
    the decoded image is the shrunk result and one band. Bands start at
    multiples of ``factor``, so the boxes are those of reducing the whole
    image. An RGB image with nothing to do is returned as it is.
    ``check``, if given, is called before each band.
    """
    if (factor == 1 and image.mode == "RGB"
            and "transparency" not in image.info):
        return image
    width, height = image.size
    result = Image.new("RGB", (_ceil_div(width, factor),
                               _ceil_div(height, factor)))
    rows = _band_rows(width, factor)
    for top in range(0, height, rows):
        if check is not None:
            check()
        band = _band_to_rgb(
            image.crop((0, top, width, min(height, top + rows))))
        if factor > 1:
            band = band.reduce(factor)
        result.paste(band, (0, top // factor))
    return result


def _band_to_rgb(band):
    """Return a band of the image as RGB, laying transparency on white."""
    if band.mode == "RGB" and "transparency" not in band.info:
        return band
    if band.mode in _SIXTEEN_BIT_MODES:
        # Pillow clips 16-bit samples at 255 rather than scaling them.
        samples = np.clip(np.asarray(band) >> 8, 0, 255).astype(np.uint8)
        return Image.fromarray(samples).convert("RGB")
    if band.mode in _TRANSPARENT_MODES or "transparency" in band.info:
        # Transparent pixels often hold arbitrary colour (usually black)
        # that the image never shows; dropping alpha would expose it.
        # White is what such images (logos, product shots) are drawn for
        # on a page, so the model sees what a person sees.
        rgba = band.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba)
        return background
    return band.convert("RGB")


def _ceil_div(numerator, denominator):
    """Return numerator / denominator rounded up, in integers."""
    return -(-numerator // denominator)


def _too_complex(message):
    """Build the error for an image too costly to decode."""
    return PayloadTooLarge(
        message + " Re-encode it (for example as a baseline JPEG) and "
        "send it again.", code="image_too_complex")


def _too_many_pixels(max_image_pixels, image_format=None):
    """Build the error for an image whose header shows too many pixels."""
    which = "" if image_format is None else f"{image_format} "
    return PayloadTooLarge(
        f"The {which}image has more than {max_image_pixels} pixels.",
        code="image_too_many_pixels")


def _invalid_base64(problem):
    """Build the error for base64 text that cannot be decoded."""
    return InvalidInput(f"The base64 image text {problem}.",
                        code="invalid_base64")
