"""One prediction: decode, pre-process, run the model, rank the classes."""

import dataclasses
import time
from collections.abc import Mapping

from app.errors import InvalidInput, PayloadTooLarge
from app.inference.decode_budget import DecodeBudget
from app.inference.decoding import (
    DEFAULT_DECODE_TIMEOUT, DEFAULT_FORMAT_PIXEL_LIMITS,
    DEFAULT_MAX_JPEG_SCANS, decode_image)
from app.inference.postprocessing import get_classes, to_probabilities
from app.inference.preprocessing import input_size, preprocess, stack


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    """Bounds applied to every image before and while it is decoded.

    ``decode_budget`` is the process-wide
    :class:`~app.inference.decode_budget.DecodeBudget` shared by every
    request, or None for no bound on concurrent decoding memory.
    """

    max_image_bytes: int
    max_image_pixels: int
    max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS
    decode_timeout: float | None = DEFAULT_DECODE_TIMEOUT
    format_pixel_limits: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: DEFAULT_FORMAT_PIXEL_LIMITS)
    decode_budget: DecodeBudget | None = None

    @classmethod
    def from_settings(cls, settings, decode_budget=None):
        """Return the limits that the service's settings configure.

        The one ``decode_budget`` of the process is passed in, so that
        every route set shares it.
        """
        return cls(settings.max_image_bytes, settings.max_image_pixels,
                   settings.max_jpeg_scans, settings.decode_timeout,
                   {"WEBP": settings.webp_max_pixels,
                    "BMP": settings.bmp_max_pixels},
                   decode_budget)


def prepare_image(data, input_spec, limits):
    """Decode one encoded image into the model's input tensor."""
    image = decode_image(data, limits.max_image_bytes,
                         limits.max_image_pixels,
                         target_size=input_size(input_spec),
                         max_jpeg_scans=limits.max_jpeg_scans,
                         decode_timeout=limits.decode_timeout,
                         format_pixel_limits=limits.format_pixel_limits,
                         budget=limits.decode_budget)
    return preprocess(image, input_spec)


def predict(model, images, top_k, limits, observe_decode=None):
    """Return the top_k classes of every encoded image, in input order.

    ``observe_decode(seconds)``, when given, hears how long each image
    took to decode and pre-process.
    """
    contract = model.contract
    tensors = []
    for data in images:
        started = time.perf_counter()
        tensors.append(prepare_image(data, contract.input, limits))
        if observe_decode is not None:
            observe_decode(time.perf_counter() - started)
    batch = stack(tensors)
    scores = to_probabilities(model.run(batch), contract.activation)
    return [get_classes(row, top_k, model.labels) for row in scores]


def check_batch_size(count, max_batch_size):
    """Refuse an empty batch and one over the configured size."""
    if count == 0:
        raise InvalidInput("send at least one image", code="missing_image")
    if count > max_batch_size:
        raise PayloadTooLarge(
            f"{count} images in one request; the limit is {max_batch_size}",
            code="batch_too_large")
