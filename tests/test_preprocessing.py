"""Tests of the pre-processing stages: size, resize, tensor, batch."""

import copy
import io
import pathlib

import numpy as np
import pytest
from PIL import Image

from app.inference.decoding import decode_image
from app.inference.preprocessing import (
    input_size, preprocess, resize_image, stack, to_tensor)

DATA_DIR = pathlib.Path(__file__).parent / "data"
LIMIT = 10 ** 8
SPEC = {
    "name": "image", "shape": [1, 224, 224, 3], "dtype": "float32",
    "layout": "NHWC", "color": "RGB",
    "resize": {"width": 224, "height": 224, "method": "bilinear"},
    "normalization": {"mean": 127.0, "std": 128.0},
}
# The methods model.json may name; each must be Pillow's filter of the
# same name, which the tests look up by that name.
METHODS = ("bicubic", "bilinear", "lanczos", "nearest")


def spec_with(**changes):
    """Return a copy of SPEC with some top-level entries replaced."""
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


def load_photo(name="chelsea.png"):
    """Return a committed test photo as an RGB image."""
    with Image.open(DATA_DIR / name) as photo:
        return photo.convert("RGB")


def every_byte_image():
    """Return a 16x16 RGB image whose channels hold every value 0..255."""
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    return Image.fromarray(
        np.stack([values, values[::-1], values.T], axis=-1), "RGB")


# input_size

def test_input_size_comes_from_resize():
    """The input size is the spec's resize width and height."""
    assert input_size(SPEC) == (224, 224)
    spec = spec_with(resize={"width": 160, "height": 120,
                             "method": "bilinear"})
    assert input_size(spec) == (160, 120)


def test_input_size_falls_back_to_nhwc_shape():
    """Without a resize entry the NHWC shape gives the size."""
    spec = spec_with(shape=[1, 120, 160, 3])
    del spec["resize"]
    assert input_size(spec) == (160, 120)


# resize_image

@pytest.mark.parametrize("method", METHODS)
def test_resize_uses_the_spec_method(method):
    """Each named method resizes exactly as Pillow's filter of that name."""
    photo = load_photo()
    spec = spec_with(resize={"width": 160, "height": 120, "method": method})
    resized = resize_image(photo, spec)
    expected = photo.resize((160, 120),
                            getattr(Image.Resampling, method.upper()))
    assert resized.size == (160, 120)
    assert np.array_equal(np.asarray(resized), np.asarray(expected))


def test_resize_methods_give_different_pixels():
    """The four methods are really different filters."""
    photo = load_photo()
    results = [np.asarray(resize_image(photo, spec_with(resize={
        "width": 224, "height": 224, "method": method})))
        for method in METHODS]
    for first, second in zip(results, results[1:]):
        assert not np.array_equal(first, second)


def test_resize_defaults_to_bilinear():
    """A resize entry without a method uses bilinear."""
    photo = load_photo()
    spec = spec_with(resize={"width": 224, "height": 224})
    assert np.array_equal(
        np.asarray(resize_image(photo, spec)),
        np.asarray(photo.resize((224, 224), Image.Resampling.BILINEAR)))


def test_resize_keeps_an_image_already_the_right_size():
    """An image already at the input size is not copied."""
    image = load_photo().resize((224, 224))
    assert resize_image(image, SPEC) is image


def test_resize_refuses_unknown_method():
    """An unknown resize method is a configuration error."""
    spec = spec_with(resize={"width": 224, "height": 224, "method": "area"})
    with pytest.raises(ValueError):
        resize_image(load_photo(), spec)


# to_tensor

def test_float32_tensor_is_normalised():
    """A float32 input is (x - mean) / std for every byte value."""
    image = every_byte_image()
    tensor = to_tensor(image, SPEC)
    pixels = np.asarray(image).astype(np.float64)
    assert tensor.shape == (16, 16, 3)
    assert tensor.dtype == np.float32
    np.testing.assert_allclose(tensor, (pixels - 127) / 128, atol=1e-6)
    assert tensor.min() == pytest.approx(-127 / 128)
    assert tensor.max() == pytest.approx(1.0)


def test_float32_tensor_takes_per_channel_mean_and_std():
    """Mean and std may be given per channel."""
    image = every_byte_image()
    spec = spec_with(normalization={"mean": [123.675, 116.28, 103.53],
                                    "std": [58.395, 57.12, 57.375]})
    pixels = np.asarray(image).astype(np.float64)
    expected = ((pixels - [123.675, 116.28, 103.53])
                / [58.395, 57.12, 57.375])
    np.testing.assert_allclose(to_tensor(image, spec), expected, atol=1e-5)


def test_uint8_tensor_is_the_raw_pixels():
    """A uint8 input is the pixels unchanged."""
    image = every_byte_image()
    tensor = to_tensor(image, spec_with(dtype="uint8"))
    assert tensor.dtype == np.uint8
    assert np.array_equal(tensor, np.asarray(image))


def test_int8_tensor_is_pixels_minus_128():
    """An int8 input is x - 128 for every byte value."""
    image = every_byte_image()
    tensor = to_tensor(image, spec_with(dtype="int8"))
    expected = np.asarray(image).astype(np.int16) - 128
    assert tensor.dtype == np.int8
    assert np.array_equal(tensor.astype(np.int16), expected)
    assert tensor.min() == -128 and tensor.max() == 127


def test_bgr_spec_reverses_channels():
    """A BGR spec gets the channels in reverse order."""
    image = every_byte_image()
    tensor = to_tensor(image, spec_with(color="BGR", dtype="uint8"))
    assert np.array_equal(tensor, np.asarray(image)[..., ::-1])


@pytest.mark.parametrize("changes", [
    {"dtype": "float64"}, {"color": "HSV"}])
def test_to_tensor_refuses_unsupported_spec(changes):
    """An unknown dtype or colour order is a configuration error."""
    with pytest.raises(ValueError):
        to_tensor(every_byte_image(), spec_with(**changes))


def test_to_tensor_refuses_non_rgb_image():
    """Only RGB images are turned into tensors."""
    with pytest.raises(ValueError):
        to_tensor(every_byte_image().convert("L"), SPEC)


# preprocess and stack

def test_preprocess_gives_the_model_input():
    """Pre-processing is a bilinear resize then normalisation."""
    photo = load_photo()
    tensor = preprocess(photo, SPEC)
    assert tensor.shape == (224, 224, 3)
    assert tensor.dtype == np.float32
    pixels = np.asarray(photo.resize((224, 224), Image.Resampling.BILINEAR),
                        dtype=np.float64)
    np.testing.assert_allclose(tensor, (pixels - 127.0) / 128.0, atol=1e-6)
    assert -127 / 128 <= tensor.min() < tensor.max() <= 1.0


def test_preprocess_leaves_the_image_unchanged():
    """Pre-processing does not modify the image it is given."""
    photo = load_photo()
    before = np.asarray(photo).copy()
    preprocess(photo, SPEC)
    assert photo.size == (451, 300)
    assert np.array_equal(np.asarray(photo), before)


def test_stack_makes_a_contiguous_batch():
    """Stacking gives a C-contiguous (N, H, W, 3) batch."""
    first = preprocess(load_photo("chelsea.png"), SPEC)
    second = preprocess(load_photo("astronaut.png"), SPEC)
    # A reversed view is not contiguous; the batch must be anyway.
    third = first[:, ::-1]
    batch = stack([first, second, third])
    assert batch.shape == (3, 224, 224, 3)
    assert batch.dtype == np.float32
    assert batch.flags["C_CONTIGUOUS"]
    assert np.array_equal(batch[1], second)
    assert np.array_equal(batch[2], third)


def test_stack_of_one_adds_the_batch_axis():
    """A single tensor becomes a batch of one."""
    tensor = preprocess(load_photo(), SPEC)
    batch = stack([tensor])
    assert batch.shape == (1, 224, 224, 3)
    assert np.array_equal(batch[0], tensor)


def test_stack_refuses_empty_or_mixed_sizes():
    """An empty batch or one of mixed sizes cannot be stacked."""
    with pytest.raises(ValueError):
        stack([])
    with pytest.raises(ValueError):
        stack([np.zeros((224, 224, 3)), np.zeros((160, 160, 3))])


# Draft decoding must not change what the model sees in any real way.

def upscaled_jpeg():
    """Return a JPEG of chelsea at 4x size, big enough for draft to act."""
    big = load_photo().resize((451 * 4, 300 * 4), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize("source", ["chelsea.jpg", "astronaut.jpg",
                                    "upscaled"])
def test_draft_decoding_gives_nearly_the_same_tensor(source):
    """Draft decoding changes the model input by under 2.5 grey levels."""
    if source == "upscaled":
        data = upscaled_jpeg()
    else:
        data = (DATA_DIR / source).read_bytes()
    full = preprocess(decode_image(data, LIMIT, LIMIT), SPEC)
    drafted = preprocess(
        decode_image(data, LIMIT, LIMIT, input_size(SPEC)), SPEC)
    # 0.02 in normalised units is about 2.5 of 255 grey levels.
    assert np.abs(full - drafted).mean() < 0.02


def test_draft_decoding_really_reduces_large_jpegs():
    """Draft decoding of a 4x-large JPEG decodes it at quarter size."""
    image = decode_image(upscaled_jpeg(), LIMIT, LIMIT, input_size(SPEC))
    assert image.size == (451, 300)
