"""Tests of image and base64 decoding: formats, limits, bombs, orientation."""

import base64
import io
import pathlib
import resource
import struct
import time
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from app.inference.decoding import (
    configure_pillow, decode_base64, decode_image)

DATA_DIR = pathlib.Path(__file__).parent / "data"
BYTE_LIMIT = 10 * 1024 * 1024
PIXEL_LIMIT = 40_000_000
PHOTO_SIZES = {"chelsea": (451, 300), "astronaut": (512, 512)}
WHITE = (255, 255, 255)
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
# How the stored pixels must be turned so that a viewer honouring each
# EXIF orientation shows the original photo (the inverse of what the
# orientation asks the viewer to do).
STORED_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def read_bytes(name):
    """Return the bytes of a committed test photo."""
    return (DATA_DIR / name).read_bytes()


def load_photo(name="chelsea.png"):
    """Return a committed test photo as an RGB image."""
    with Image.open(DATA_DIR / name) as photo:
        return photo.convert("RGB")


def encode(image, image_format, **params):
    """Return the image saved in the given format, in memory."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def decode(data, target_size=None, max_image_pixels=PIXEL_LIMIT):
    """Decode with the service's default limits."""
    return decode_image(data, BYTE_LIMIT, max_image_pixels, target_size)


def mean_abs_diff(first, second):
    """Return the mean absolute difference of two same-sized images."""
    return np.abs(np.asarray(first, dtype=np.int16)
                  - np.asarray(second, dtype=np.int16)).mean()


def png_chunk(kind, body):
    """Return one PNG chunk with its length and CRC."""
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body)))


def make_black_png(width, height):
    """Build a valid 1-bit black PNG row by row, never holding its pixels."""
    row = bytes(1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    pieces = [compressor.compress(row) for _ in range(height)]
    pieces.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", b"".join(pieces)) + png_chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def png_bomb():
    """Return a 30000x30000 PNG (900 megapixels) of about 100 kB."""
    return make_black_png(30000, 30000)


def assert_service_error(error_info, error_class, code):
    """Check the raised error's class and code."""
    assert type(error_info.value) is error_class
    assert error_info.value.code == code


# Committed photos and accepted formats.

@pytest.mark.parametrize("name", ["chelsea.png", "chelsea.jpg",
                                  "astronaut.png", "astronaut.jpg"])
def test_decodes_committed_photos_to_loaded_rgb(name):
    """Each committed photo decodes to a fully loaded RGB image."""
    image = decode(read_bytes(name))
    assert image.mode == "RGB"
    assert image.size == PHOTO_SIZES[name.split(".")[0]]
    # Image.open leaves tiles to decode; a loaded image has none left.
    assert getattr(image, "tile", []) == []


@pytest.mark.parametrize("stem", ["chelsea", "astronaut"])
def test_jpeg_copy_matches_png_original(stem):
    """A JPEG copy decodes to nearly the pixels of its PNG original."""
    from_png = decode(read_bytes(f"{stem}.png"))
    from_jpeg = decode(read_bytes(f"{stem}.jpg"))
    assert mean_abs_diff(from_png, from_jpeg) < 3


@pytest.mark.parametrize("image_format, params", [
    ("PNG", {}), ("JPEG", {"quality": 95}), ("WEBP", {"lossless": True}),
    ("GIF", {}), ("BMP", {})])
def test_decodes_each_allowed_format(image_format, params):
    """PNG, JPEG, WEBP, GIF and BMP all decode to the photo."""
    photo = load_photo()
    image = decode(encode(photo, image_format, **params))
    assert image.mode == "RGB"
    assert image.size == photo.size
    # GIF keeps 256 colours only, so it is the least faithful of them.
    assert mean_abs_diff(image, photo) < 8


def test_decodes_multi_picture_jpeg_from_cameras():
    """A camera's multi-picture JPEG (MPO) is accepted as a JPEG."""
    photo = load_photo()
    data = encode(photo, "MPO", save_all=True,
                  append_images=[photo.resize((64, 48))])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    image = decode(data)
    assert image.size == photo.size
    assert mean_abs_diff(image, photo) < 3


@pytest.mark.parametrize("image_format", ["TIFF", "PPM", "PCX", "ICO",
                                          "TGA"])
def test_refuses_decodable_formats_not_allowed(image_format):
    """A format Pillow reads but the service does not accept is a 415."""
    data = encode(load_photo().resize((32, 32)), image_format)
    assert Image.open(io.BytesIO(data)).format == image_format
    with pytest.raises(UnsupportedMediaType) as error_info:
        decode(data)
    assert_service_error(error_info, UnsupportedMediaType,
                         "unsupported_image_format")


@pytest.mark.parametrize("data", [
    b"not an image at all", bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n",
    b""])
def test_refuses_bytes_that_are_no_image(data):
    """Bytes that are no image at all are invalid_image."""
    with pytest.raises(InvalidInput) as error_info:
        decode(data)
    assert_service_error(error_info, InvalidInput, "invalid_image")


# Byte and pixel limits, decompression bombs.

def test_refuses_image_over_byte_limit():
    """One byte over max_image_bytes is image_too_large."""
    data = read_bytes("chelsea.jpg")
    assert decode_image(data, len(data), PIXEL_LIMIT).size == (451, 300)
    with pytest.raises(PayloadTooLarge) as error_info:
        decode_image(data, len(data) - 1, PIXEL_LIMIT)
    assert_service_error(error_info, PayloadTooLarge, "image_too_large")


@pytest.mark.parametrize("name", ["chelsea.jpg", "chelsea.png"])
def test_refuses_image_over_pixel_limit(name):
    """One pixel over max_image_pixels is image_too_many_pixels."""
    data = read_bytes(name)
    assert decode(data, max_image_pixels=451 * 300).size == (451, 300)
    with pytest.raises(PayloadTooLarge) as error_info:
        decode(data, max_image_pixels=451 * 300 - 1)
    assert_service_error(error_info, PayloadTooLarge,
                         "image_too_many_pixels")


def test_bomb_builder_makes_a_real_png():
    """The bomb builder writes a PNG that decodes, so the bomb is real."""
    image = decode(make_black_png(70, 45))
    assert image.size == (70, 45)
    assert image.getextrema() == ((0, 0), (0, 0), (0, 0))


def test_png_bomb_is_refused_from_its_header(png_bomb, monkeypatch):
    """A 900-megapixel PNG is refused fast, without allocating pixels."""
    # With Pillow's own guard off, only the per-call check stands between
    # the bomb and 900 MB of pixels.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert len(png_bomb) < 200_000
    rss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(PayloadTooLarge) as error_info:
            decode(png_bomb)
        elapsed = time.perf_counter() - started
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth_kib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                      - rss_before_kib)
    assert_service_error(error_info, PayloadTooLarge,
                         "image_too_many_pixels")
    assert elapsed < 1.0
    assert python_peak < 5 * 1024 * 1024
    assert rss_growth_kib < 50 * 1024


def test_pillow_bomb_error_becomes_payload_too_large(png_bomb, monkeypatch):
    """Pillow's own DecompressionBombError becomes a 413."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)
    with pytest.raises(PayloadTooLarge) as error_info:
        decode(png_bomb, max_image_pixels=10 ** 12)
    assert_service_error(error_info, PayloadTooLarge,
                         "image_too_many_pixels")
    assert isinstance(error_info.value.__cause__, Image.DecompressionBombError)


def test_jpeg_header_claiming_huge_size_is_refused(monkeypatch):
    """A JPEG whose header claims 60000x60000 is refused unread."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    data = bytearray(read_bytes("chelsea.jpg"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5:frame + 9] = struct.pack(">HH", 60000, 60000)
    with pytest.raises(PayloadTooLarge) as error_info:
        decode(bytes(data))
    assert_service_error(error_info, PayloadTooLarge,
                         "image_too_many_pixels")


def test_bmp_header_claiming_huge_size_is_refused(monkeypatch):
    """A BMP whose header claims 50000x50000 is refused unread."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    data = bytearray(encode(Image.new("RGB", (4, 4)), "BMP"))
    # BITMAPINFOHEADER: width and height follow the 14-byte file header
    # and the 4-byte header size.
    data[18:26] = struct.pack("<ii", 50000, 50000)
    with pytest.raises(PayloadTooLarge) as error_info:
        decode(bytes(data))
    assert_service_error(error_info, PayloadTooLarge,
                         "image_too_many_pixels")


def test_configure_pillow_sets_limits_and_refuses_bomb_warning(monkeypatch):
    """The start-up configuration sets limits and refuses warned bombs."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = read_bytes("chelsea.png")
    with warnings.catch_warnings():
        configure_pillow(451 * 300 - 1)
        assert Image.MAX_IMAGE_PIXELS == 451 * 300 - 1
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False
        # Between one and two times Pillow's limit it only warns; the
        # warning must refuse the image even when the caller's limit is
        # higher.
        with pytest.raises(PayloadTooLarge) as error_info:
            decode(data, max_image_pixels=10 ** 9)
    assert_service_error(error_info, PayloadTooLarge,
                         "image_too_many_pixels")
    assert isinstance(error_info.value.__cause__,
                      Image.DecompressionBombWarning)


def test_decoding_leaves_pillow_globals_alone():
    """Decoding never changes Pillow's process-wide settings."""
    limit_before = Image.MAX_IMAGE_PIXELS
    decode(read_bytes("chelsea.jpg"), max_image_pixels=10 ** 6)
    decode(read_bytes("chelsea.png"), max_image_pixels=10 ** 9)
    with pytest.raises(InvalidInput):
        decode(read_bytes("chelsea.png")[:5000])
    assert Image.MAX_IMAGE_PIXELS == limit_before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# Truncated files.

@pytest.mark.parametrize("name", ["chelsea.jpg", "chelsea.png",
                                  "astronaut.jpg", "astronaut.png"])
@pytest.mark.parametrize("kept_fraction", [0.1, 0.5, 0.95])
def test_refuses_truncated_image(name, kept_fraction):
    """A truncated JPEG or PNG is invalid_image, not a padded image."""
    data = read_bytes(name)
    with pytest.raises(InvalidInput) as error_info:
        decode(data[:int(len(data) * kept_fraction)])
    assert_service_error(error_info, InvalidInput, "invalid_image")


@pytest.mark.parametrize("name", ["chelsea.jpg", "chelsea.png"])
def test_refuses_file_cut_inside_its_header(name):
    """A file cut inside its header is invalid_image."""
    with pytest.raises(InvalidInput) as error_info:
        decode(read_bytes(name)[:30])
    assert_service_error(error_info, InvalidInput, "invalid_image")


# EXIF orientation and draft decoding.

def rotated_copy(orientation, name="chelsea.png"):
    """Return a JPEG storing the photo turned, with EXIF to turn it back."""
    stored = load_photo(name).transpose(STORED_FOR_ORIENTATION[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=90, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", sorted(STORED_FOR_ORIENTATION))
def test_applies_exif_orientation(orientation):
    """Every EXIF orientation turns the stored pixels back upright."""
    original = decode(read_bytes("chelsea.jpg"))
    image = decode(rotated_copy(orientation))
    assert image.size == original.size
    assert mean_abs_diff(image, original) < 3


@pytest.mark.parametrize("orientation", [6, 8])
def test_rotated_image_is_not_left_as_stored(orientation):
    """A portrait-stored, EXIF-rotated photo comes out landscape."""
    stored = Image.open(io.BytesIO(rotated_copy(orientation)))
    assert stored.size == (300, 451)
    assert decode(rotated_copy(orientation)).size == (451, 300)


def test_draft_scales_jpeg_down_while_decoding():
    """A target size lets libjpeg decode at 1/2, 1/4 or 1/8 scale."""
    assert decode(read_bytes("chelsea.jpg"), (112, 75)).size == (113, 75)
    assert decode(read_bytes("astronaut.jpg"), (224, 224)).size == (256, 256)


@pytest.mark.parametrize("orientation", [None, 3, 6, 8])
@pytest.mark.parametrize("target_size", [(224, 224), (70, 220), (220, 70),
                                         (112, 75), (56, 37), (1, 1)])
def test_draft_never_goes_below_target_size(orientation, target_size):
    """Draft decoding never yields an image smaller than the target."""
    if orientation is None:
        data = read_bytes("chelsea.jpg")
    else:
        data = rotated_copy(orientation)
    image = decode(data, target_size)
    width, height = image.size
    # Upright, whatever the EXIF said, and at least the size asked for.
    assert width > height
    assert width >= target_size[0] and height >= target_size[1]


def test_draft_on_rotated_jpeg_matches_draft_on_upright_one():
    """Draft on an EXIF-rotated JPEG asks for the turned size."""
    upright = decode(read_bytes("chelsea.jpg"), (112, 75))
    rotated = decode(rotated_copy(6), (112, 75))
    assert rotated.size == upright.size == (113, 75)
    assert mean_abs_diff(rotated, upright) < 4


def test_target_size_shrinks_other_formats_by_whole_factors():
    """A PNG is averaged down by a whole factor, to at least 3x the target.

    Unlike libjpeg's draft, which goes down to the target itself, this
    keeps three times the target so that the model's resize still sees
    nearly the same pixels.
    """
    data = read_bytes("chelsea.png")
    assert decode(data, (112, 75)).size == (451, 300)
    assert decode(data, (75, 50)).size == (226, 150)
    assert decode(data, (37, 25)).size == (113, 75)
    assert decode(data, (1, 1)).size == (5, 3)


def test_refuses_target_size_without_area():
    """A target size of zero width is a programming error."""
    with pytest.raises(ValueError):
        decode(read_bytes("chelsea.jpg"), (0, 75))


# Colour modes.

@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "BMP"])
def test_grayscale_becomes_equal_rgb_channels(image_format):
    """A grayscale image becomes RGB with three equal channels."""
    gray = load_photo().convert("L")
    image = decode(encode(gray, image_format, **(
        {"quality": 95} if image_format == "JPEG" else {})))
    pixels = np.asarray(image)
    assert image.mode == "RGB"
    assert (pixels[..., 0] == pixels[..., 1]).all()
    assert (pixels[..., 1] == pixels[..., 2]).all()
    assert mean_abs_diff(pixels[..., 0], gray) < 2


def test_one_bit_image_becomes_black_and_white():
    """A 1-bit image becomes pure black and white RGB."""
    bits = load_photo().convert("1")
    image = decode(encode(bits, "PNG"))
    assert image.getcolors() is not None
    assert {color for _, color in image.getcolors()} == {(0, 0, 0), WHITE}


@pytest.mark.parametrize("image_format", ["PNG", "GIF", "BMP"])
def test_palette_image_becomes_its_colours(image_format):
    """A palette image becomes exactly its palette colours."""
    palette_image = load_photo().quantize(64)
    image = decode(encode(palette_image, image_format))
    assert mean_abs_diff(image, palette_image.convert("RGB")) == 0


def two_colour_palette_image():
    """Return a P image: left half index 0 (red), right half 1 (blue)."""
    image = Image.new("P", (40, 20), 0)
    image.putpalette(RED + BLUE)
    image.paste(1, (20, 0, 40, 20))
    return image


@pytest.mark.parametrize("image_format", ["PNG", "GIF"])
def test_transparent_palette_entry_becomes_white(image_format):
    """A transparent palette entry is shown as white."""
    data = encode(two_colour_palette_image(), image_format, transparency=0)
    image = decode(data)
    assert image.getpixel((5, 5)) == WHITE
    assert image.getpixel((30, 5)) == BLUE


def test_png_palette_with_partial_alpha_is_blended_on_white():
    """Per-entry palette alpha is honoured when laying on white."""
    data = encode(two_colour_palette_image(), "PNG",
                  transparency=bytes([255, 0]))
    image = decode(data)
    assert image.getpixel((5, 5)) == RED
    assert image.getpixel((30, 5)) == WHITE


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_rgba_is_laid_on_white(image_format):
    """RGBA pixels are alpha-blended onto white."""
    pixels = np.zeros((20, 30, 4), dtype=np.uint8)
    pixels[:, :10] = (0, 0, 0, 0)          # invisible black
    pixels[:, 10:20] = (255, 0, 0, 128)    # half-transparent red
    pixels[:, 20:] = (0, 0, 255, 255)      # opaque blue
    params = {"lossless": True} if image_format == "WEBP" else {}
    image = decode(encode(Image.fromarray(pixels, "RGBA"), image_format,
                          **params))
    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == WHITE
    red, green, blue = image.getpixel((15, 5))
    assert red == 255 and 125 <= green <= 129 and 125 <= blue <= 129
    assert image.getpixel((25, 5)) == BLUE


def test_gray_with_alpha_is_laid_on_white():
    """Gray with alpha (LA) is alpha-blended onto white."""
    gray = Image.new("LA", (20, 10), (40, 255))
    gray.paste((40, 0), (0, 0, 10, 10))
    image = decode(encode(gray, "PNG"))
    assert image.getpixel((5, 5)) == WHITE
    assert image.getpixel((15, 5)) == (40, 40, 40)


def test_rgb_png_transparent_colour_becomes_white():
    """An RGB PNG's declared transparent colour is shown as white."""
    image = Image.new("RGB", (20, 10), BLUE)
    image.paste((0, 0, 0), (0, 0, 10, 10))
    decoded = decode(encode(image, "PNG", transparency=(0, 0, 0)))
    assert decoded.getpixel((5, 5)) == WHITE
    assert decoded.getpixel((15, 5)) == BLUE


def test_cmyk_jpeg_becomes_rgb():
    """A CMYK JPEG becomes RGB close to the original photo."""
    photo = load_photo()
    data = encode(photo.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    image = decode(data)
    assert image.mode == "RGB"
    assert mean_abs_diff(image, photo) < 4


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    """16-bit samples are scaled to 8 bits rather than clipped."""
    samples = (np.arange(64 * 32, dtype=np.uint32) * 32).astype(np.uint16)
    samples = samples.reshape(32, 64)
    data = encode(Image.fromarray(samples), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    pixels = np.asarray(decode(data))
    assert (pixels[..., 0] == samples >> 8).all()
    assert (pixels[..., 2] == samples >> 8).all()


# Animations and tiny images.

def colour_frames():
    """Return three solid frames: red, green, blue."""
    return [Image.new("RGB", (30, 20), colour) for colour in (RED, GREEN,
                                                              BLUE)]


@pytest.mark.parametrize("image_format, params", [
    ("GIF", {}), ("WEBP", {"lossless": True})])
def test_animation_gives_its_first_frame(image_format, params):
    """An animated GIF or WEBP gives its first frame."""
    first, *others = colour_frames()
    data = encode(first, image_format, save_all=True, append_images=others,
                  duration=100, **params)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    image = decode(data)
    assert image.mode == "RGB"
    assert image.size == (30, 20)
    assert image.getcolors() == [(600, RED)]


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP",
                                          "WEBP"])
@pytest.mark.parametrize("target_size", [None, (224, 224)])
def test_decodes_one_pixel_image(image_format, target_size):
    """A 1x1 image decodes, with or without a target size."""
    image = decode(encode(Image.new("RGB", (1, 1), GREEN), image_format),
                   target_size)
    assert image.mode == "RGB"
    assert image.size == (1, 1)
    red, green, blue = image.getpixel((0, 0))
    assert red < 20 and green > 235 and blue < 20


# Base64.

PAYLOAD = bytes(range(256)) * 3 + b"\xfb\xff"


def test_decodes_standard_base64_with_and_without_padding():
    """Standard base64 decodes with or without its padding."""
    text = base64.b64encode(PAYLOAD).decode()
    assert text.endswith("=")
    assert decode_base64(text, BYTE_LIMIT) == PAYLOAD
    assert decode_base64(text.rstrip("="), BYTE_LIMIT) == PAYLOAD


def test_decodes_url_safe_base64_with_and_without_padding():
    """URL-safe base64 decodes with or without its padding."""
    text = base64.urlsafe_b64encode(PAYLOAD).decode()
    assert "-" in text and "_" in text
    assert decode_base64(text, BYTE_LIMIT) == PAYLOAD
    assert decode_base64(text.rstrip("="), BYTE_LIMIT) == PAYLOAD


@pytest.mark.parametrize("prefix", [
    "data:image/png;base64,", "DATA:image/JPEG;base64,",
    "data:image/svg+xml;charset=utf-8;base64,"])
def test_drops_data_url_prefix(prefix):
    """A data:image/...;base64, prefix is dropped, in any case."""
    text = prefix + base64.b64encode(PAYLOAD).decode()
    assert decode_base64(text, BYTE_LIMIT) == PAYLOAD


def test_ignores_line_breaks_and_accepts_bytes():
    """MIME line breaks are ignored and bytes are accepted."""
    text = base64.encodebytes(PAYLOAD)
    assert b"\n" in text.strip()
    assert decode_base64(text, BYTE_LIMIT) == PAYLOAD
    assert decode_base64(b"  " + text + b"\r\n", BYTE_LIMIT) == PAYLOAD


def test_base64_photo_decodes_like_its_bytes():
    """A photo sent as a base64 data URL decodes like its bytes."""
    data = read_bytes("chelsea.jpg")
    text = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    image = decode(decode_base64(text, BYTE_LIMIT))
    assert mean_abs_diff(image, decode(data)) == 0


@pytest.mark.parametrize("text", [
    "QUJD$", "QUJDRA=A", "QUJDR", "QQ===", "QQ==QQ==", "a+b-", "caf\u00e9",
    "", "   ", "====", "data:text/plain;base64,QUJD", "data:image/png,QUJD",
    b"\xff\xfe", None, 42])
def test_refuses_invalid_base64(text):
    """Text that is not base64 of an image is invalid_base64."""
    with pytest.raises(InvalidInput) as error_info:
        decode_base64(text, BYTE_LIMIT)
    assert_service_error(error_info, InvalidInput, "invalid_base64")


def test_refuses_base64_over_limit_before_decoding():
    """Base64 text too long for the limit is refused before decoding."""
    text = base64.b64encode(PAYLOAD).decode()
    assert decode_base64(text, len(PAYLOAD)) == PAYLOAD
    with pytest.raises(PayloadTooLarge) as error_info:
        decode_base64(text, len(PAYLOAD) - 1)
    assert_service_error(error_info, PayloadTooLarge, "image_too_large")
    # Text that is not even base64 is refused for its size alone, which
    # shows the length is checked before anything is decoded.
    with pytest.raises(PayloadTooLarge):
        decode_base64("!" * 4000, 2999)
