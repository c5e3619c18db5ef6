"""Turn untrusted encoded image bytes or base64 text into RGB PIL images.

Every limit is checked before the work it protects: the byte count before
anything is parsed, the base64 length before it is decoded, the pixel
count from the image header before any pixel is decoded. Whatever is
wrong with the input becomes a :class:`~app.errors.ServiceError`, never an
unhandled exception.
"""

import base64
import binascii
import io
import re
import struct
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps

from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

# MPO is how Pillow names a JPEG that carries extra pictures (most phone
# cameras write one); its first picture is an ordinary JPEG.
ALLOWED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP"})
_DRAFTABLE_FORMATS = frozenset({"JPEG", "MPO"})
# EXIF orientations that turn the stored image by 90 or 270 degrees.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION_TAG = 0x0112
_TRANSPARENT_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_WHITE = (255, 255, 255)
# Pillow's plugins report malformed input with a wide, undocumented range
# of exceptions; each of them means the client sent a broken image.
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError,
                   KeyError, TypeError, ZeroDivisionError, struct.error)
_DATA_URL_PREFIX = re.compile(
    r"data:image/[a-z0-9.+-]+(?:;[a-z0-9.+-]+=[^;,]*)*;base64,",
    re.IGNORECASE)


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


def decode_image(data, max_image_bytes, max_image_pixels, target_size=None):
    """Decode image bytes into a fully loaded, upright RGB PIL image.

    JPEG, PNG, WEBP, GIF and BMP are accepted; an animation gives its first
    frame. The EXIF orientation is applied, and transparent pixels are laid
    on white. Given ``target_size`` as (width, height), a JPEG is scaled
    down by libjpeg while it decodes, never below that size, which makes a
    later resize to it cheaper.

    Raise PayloadTooLarge (``image_too_large``, ``image_too_many_pixels``),
    UnsupportedMediaType (``unsupported_image_format``) or InvalidInput
    (``invalid_image``).
    """
    if target_size is not None and min(target_size) < 1:
        raise ValueError(f"target_size must be positive, not {target_size}")
    if len(data) > max_image_bytes:
        raise PayloadTooLarge(
            f"The image is {len(data)} bytes; the limit is "
            f"{max_image_bytes}.", code="image_too_large")
    if not data:
        raise InvalidInput("The image is empty.", code="invalid_image")
    try:
        image = Image.open(io.BytesIO(data))
        _check_header(image, max_image_pixels)
        if target_size is not None and image.format in _DRAFTABLE_FORMATS:
            _request_draft(image, target_size)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        return _to_rgb(image)
    except (Image.DecompressionBombError,
            Image.DecompressionBombWarning) as error:
        raise _too_many_pixels(max_image_pixels) from error
    except _DECODER_ERRORS as error:
        raise InvalidInput(
            "The image could not be decoded; it may be truncated or "
            "corrupt.", code="invalid_image") from error


def _check_header(image, max_image_pixels):
    """Refuse a format or a pixel count we will not decode, from the header."""
    if image.format not in ALLOWED_FORMATS:
        raise UnsupportedMediaType(
            f"Images in {image.format} format are not accepted; send JPEG, "
            "PNG, WEBP, GIF or BMP.", code="unsupported_image_format")
    width, height = image.size
    if width * height > max_image_pixels:
        raise _too_many_pixels(max_image_pixels)


def _request_draft(image, target_size):
    """Let libjpeg decode at the smallest scale still covering target_size."""
    width, height = target_size
    # Draft works on the stored image, which EXIF may later turn by 90
    # degrees; the size asked for must then be turned the same way.
    orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    image.draft("RGB", (width, height))


def _to_rgb(image):
    """Return the image as RGB, laying any transparent pixels on white."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow clips 16-bit samples at 255 rather than scaling them.
        samples = np.clip(np.asarray(image) >> 8, 0, 255).astype(np.uint8)
        return Image.fromarray(samples).convert("RGB")
    if image.mode in _TRANSPARENT_MODES or "transparency" in image.info:
        # Transparent pixels often hold arbitrary colour (usually black)
        # that the image never shows; dropping alpha would expose it.
        # White is what such images (logos, product shots) are drawn for
        # on a page, so the model sees what a person sees.
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba)
        return background
    return image.convert("RGB")


def _too_many_pixels(max_image_pixels):
    """Build the error for an image whose header shows too many pixels."""
    return PayloadTooLarge(
        f"The image has more than {max_image_pixels} pixels.",
        code="image_too_many_pixels")


def _invalid_base64(problem):
    """Build the error for base64 text that cannot be decoded."""
    return InvalidInput(f"The base64 image text {problem}.",
                        code="invalid_base64")
