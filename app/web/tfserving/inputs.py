"""Read the images of TF Serving's predict and classify request bodies.

Predict takes rows (``"instances"``: one value per image) or columns
(``"inputs"``: the whole batch), each either bare or under the input's
name, as TF Serving does for a model of one input. A value is the
model's pre-processed input tensor as nested lists, or an encoded image
as ``{"b64": "..."}``; encoded images may also go under the name
``<input>_bytes``, the convention of models that take image bytes.
Classify takes ``"examples"``, each with the image as the feature of
that name (optionally in the shared ``"context"``); other features are
checked as TF Serving checks them, then left alone as a model ignores
the features it does not parse.
"""

import dataclasses

import numpy as np

from app.errors import InvalidInput
from app.inference.decoding import decode_base64
from app.inference.pipeline import check_batch_size
from app.web.tfserving.documents import SIGNATURE
from app.web.tfserving.values import check_features, is_base64, read_tensor

_ROWS, _COLUMNS = "instances", "inputs"


@dataclasses.dataclass(frozen=True)
class PredictInput:
    """The batch of a predict request, and which format to answer in."""

    columnar: bool
    images: list | None = None
    tensor: np.ndarray | None = None


def check_signature(body):
    """Refuse any signature but the default one, serving_default."""
    name = body.get("signature_name", "")
    if not isinstance(name, str):
        raise InvalidInput("'signature_name' key must be a string value.")
    if name not in ("", SIGNATURE):
        raise InvalidInput(f'Serving signature name: "{name}" not found in '
                           "signature def", code="unknown_signature")


def read_predict(body, contract, max_batch_size, max_image_bytes):
    """Return the encoded images or the tensor a predict body holds."""
    if _ROWS in body and _COLUMNS in body:
        raise InvalidInput("Not formatted correctly expecting only one of "
                           "'inputs' or 'instances' keys to exist")
    names = (contract.input_name, contract.input_name + "_bytes")
    if _ROWS in body:
        instances = body[_ROWS]
        if not isinstance(instances, list):
            raise InvalidInput("Expecting 'instances' to be an list/array")
        if not instances:
            raise InvalidInput("No values in 'instances' array")
        check_batch_size(len(instances), max_batch_size)
        values, name = _row_values(instances, names)
    elif _COLUMNS in body:
        values, name = _column_values(body[_COLUMNS], names)
        check_batch_size(len(values), max_batch_size)
    else:
        raise InvalidInput("Missing 'inputs' or 'instances' key")
    columnar = _COLUMNS in body
    if all(is_base64(value) for value in values):
        return PredictInput(columnar, images=[
            decode_base64(value["b64"], max_image_bytes)
            for value in values])
    if name == names[1]:
        raise InvalidInput(f'{name} takes encoded images: {{"b64": ...}}')
    return PredictInput(columnar, tensor=read_tensor(values, contract.input))


def read_examples(body, names, max_batch_size, max_image_bytes):
    """Return the encoded image of every example of a classify body."""
    context = body.get("context", {})
    examples = body.get("examples")
    if examples is None:
        raise InvalidInput("When method is classify, key 'examples' is "
                           "expected and was not found")
    if not isinstance(examples, list):
        raise InvalidInput("Expecting 'examples' value to be an list/array")
    if not examples:
        raise InvalidInput("'examples' value is an empty array")
    check_batch_size(len(examples), max_batch_size)
    check_features(context, "context")
    images = []
    for number, example in enumerate(examples):
        check_features(example, f"example {number}")
        if set(example) & set(context):
            raise InvalidInput(f"example {number} repeats a feature of the "
                               "context, which all examples share")
        image = [value for name, value in {**context, **example}.items()
                 if name in names]
        if len(image) != 1:
            raise InvalidInput(f"example {number} must have one feature "
                               f"{names[0]} (or {names[1]}) holding the "
                               'encoded image as {"b64": ...}')
        value = image[0][0] if _is_one_item_list(image[0]) else image[0]
        if not is_base64(value):
            raise InvalidInput(f"feature {names[0]} of example {number} "
                               'must be an encoded image: {"b64": ...}')
        images.append(decode_base64(value["b64"], max_image_bytes))
    return images


def _row_values(instances, names):
    """Return each instance's value and the input name they came under."""
    if not _is_named(instances[0]):
        for number, item in enumerate(instances):
            if _is_named(item):
                raise InvalidInput("Expecting value/list but got object at "
                                   f"item {number} of input list")
        return instances, None
    name = _input_name(instances[0], names)
    for number, item in enumerate(instances):
        if not _is_named(item) or list(item) != [name]:
            raise InvalidInput(
                f"Failed to process element: {number} of 'instances' list. "
                f"JSON object keys must be equal to: {name}")
    return [item[name] for item in instances], name


def _column_values(inputs, names):
    """Return the batch of an "inputs" value and the name it came under."""
    name = None
    if _is_named(inputs):
        name = _input_name(inputs, names)
        inputs = inputs[name]
    if not isinstance(inputs, list):
        raise InvalidInput("'inputs' must hold a batch: a list with one "
                           "item per image")
    return inputs, name


def _input_name(value, names):
    """Return the one input name an object has, or refuse it."""
    if len(value) != 1 or next(iter(value)) not in names:
        raise InvalidInput(
            f"JSON object: does not have named input: the model takes "
            f"{names[0]} (or {names[1]} for encoded images), not "
            f"{', '.join(sorted(value))}")
    return next(iter(value))


def _is_named(value):
    """Tell whether value is an object of named inputs, not base64."""
    return isinstance(value, dict) and not is_base64(value)


def _is_one_item_list(value):
    """Tell whether value is a list of one item (a feature's one value)."""
    return isinstance(value, list) and len(value) == 1
