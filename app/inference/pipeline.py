"""One prediction: decode, pre-process, run the model, rank the classes."""

import dataclasses

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
    spec = model.metadata["input"]
    batch = stack([prepare_image(data, spec, limits) for data in images])
    scores = to_probabilities(
        model.run(batch),
        model.metadata["output"].get("activation", "softmax"))
    return [get_classes(row, top_k, model.labels) for row in scores]
