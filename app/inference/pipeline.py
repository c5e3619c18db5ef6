"""One prediction: decode, pre-process, run the model, rank the classes."""

import dataclasses

from app.errors import InvalidInput, PayloadTooLarge
from app.inference.decoding import decode_image
from app.inference.postprocessing import get_classes, to_probabilities
from app.inference.preprocessing import input_size, preprocess, stack


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    """Bounds applied to every image before it is decoded."""

    max_image_bytes: int
    max_image_pixels: int

    @classmethod
    def from_settings(cls, settings):
        """Return the limits that the service's settings configure."""
        return cls(settings.max_image_bytes, settings.max_image_pixels)


def prepare_image(data, input_spec, limits):
    """Decode one encoded image into the model's input tensor."""
    image = decode_image(data, limits.max_image_bytes,
                         limits.max_image_pixels,
                         target_size=input_size(input_spec))
    return preprocess(image, input_spec)


def predict(model, images, top_k, limits):
    """Return the top_k classes of every encoded image, in input order."""
    contract = model.contract
    batch = stack([prepare_image(data, contract.input, limits)
                   for data in images])
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
