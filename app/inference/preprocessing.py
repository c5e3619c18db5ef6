"""Turn decoded RGB images into the input tensor a model's spec asks for.

Each stage is a pure function of an image (or tensors) and the model's
input spec, the ``"input"`` object of its ``model.json``, e.g.::

    {"name": "image", "shape": [1, 224, 224, 3], "dtype": "float32",
     "layout": "NHWC", "color": "RGB",
     "resize": {"width": 224, "height": 224, "method": "bilinear"},
     "normalization": {"mean": 127.0, "std": 128.0}}

``mean`` and ``std`` may also be lists of three, one per colour channel.
"""

import numpy as np
from PIL import Image

_RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
_INT8_OFFSET = 128


def input_size(spec):
    """Return the (width, height) images are resized to for this model."""
    resize = spec.get("resize")
    if resize is not None:
        return int(resize["width"]), int(resize["height"])
    _, height, width, _ = spec["shape"]
    return int(width), int(height)


def resize_image(image, spec):
    """Resize the image to the model's input size with the spec's method.

    The aspect ratio is not kept, as the model was trained that way. An
    image already of the right size is returned as it is.
    """
    size = input_size(spec)
    if image.size == size:
        return image
    method = spec.get("resize", {}).get("method", "bilinear")
    try:
        resample = _RESAMPLING[method]
    except KeyError:
        raise ValueError(f"unknown resize method {method!r}") from None
    return image.resize(size, resample)


def to_tensor(image, spec):
    """Return the RGB image as an (H, W, 3) array of the spec's dtype.

    float32 gives ``(x - mean) / std``. uint8 gives the raw pixels. int8
    gives ``x - 128``: the input of a fully quantised model whose input
    quantisation maps the pixel range 0..255 onto -128..127 (scale 1/std
    with std 128, zero point chosen to match), so the normalisation is
    folded into the quantisation; a model quantised otherwise needs its
    own stage. A spec with ``"color": "BGR"`` gets the channels reversed.
    """
    if image.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {image.mode}")
    pixels = np.asarray(image)
    color = spec.get("color", "RGB")
    if color == "BGR":
        pixels = np.ascontiguousarray(pixels[..., ::-1])
    elif color != "RGB":
        raise ValueError(f"unsupported color order {color!r}")
    dtype = spec.get("dtype", "float32")
    if dtype == "float32":
        return _normalize(pixels, spec.get("normalization", {}))
    if dtype == "uint8":
        return pixels
    if dtype == "int8":
        # Flipping the top bit of a byte and reading it as signed is
        # exactly x - 128, without a wider intermediate array.
        return (pixels ^ np.uint8(_INT8_OFFSET)).view(np.int8)
    raise ValueError(f"unsupported input dtype {dtype!r}")


def preprocess(image, spec):
    """Return the model input tensor (H, W, 3) for one decoded RGB image."""
    return to_tensor(resize_image(image, spec), spec)


def stack(tensors):
    """Return the tensors of one size as a contiguous (N, H, W, 3) batch."""
    if not tensors:
        raise ValueError("cannot stack an empty list of tensors")
    return np.stack(tensors)


def _normalize(pixels, normalization):
    """Return (pixels - mean) / std as float32, in one new array."""
    mean = np.asarray(normalization.get("mean", 0.0), dtype=np.float32)
    std = np.asarray(normalization.get("std", 1.0), dtype=np.float32)
    tensor = pixels.astype(np.float32)
    tensor -= mean
    tensor /= std
    return tensor
