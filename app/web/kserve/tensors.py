"""Read the inference requests of the Open Inference Protocol (V2).

An inference request carries one input, in either of two forms:

* the model's own input tensor, e.g. FP32 ``[N, 224, 224, 3]``, already
  pre-processed, its ``data`` flattened in row-major order or nested;
* a BYTES tensor ``[N]`` (or ``[N, 1]``) of encoded images, each element
  a base64 string. JSON has no bytes, so this is how Triton's and KServe's
  clients send binary elements without the binary-data extension, and
  what MLServer marks with the parameter ``"content_type": "base64"``.

Either form may instead come as binary data after the JSON (the binary
tensor data extension, :mod:`app.web.kserve.binary`). A request may name
its model and version, as the KServe and Triton clients do; they must be
the ones its URL names.
"""

import dataclasses

import numpy as np

from app.errors import InvalidInput
from app.inference.decoding import decode_base64
from app.inference.pipeline import check_batch_size, prepare_image
from app.inference.preprocessing import stack
from app.web.kserve import binary
from app.web.kserve.arrays import flatten, read_shape, to_array
from app.web.kserve.responses import (
    DATATYPES, OutputRequest, read_output_request)

_REQUEST_KEYS = {"id", "model_name", "model_version", "parameters", "inputs",
                 "outputs"}
_INPUT_KEYS = {"name", "shape", "datatype", "parameters", "data"}
_BYTES_CONTENT_TYPES = {None, "base64"}


@dataclasses.dataclass(frozen=True)
class InferenceRequest:
    """A checked inference request: id, input batch, how to answer."""

    request_id: str | None
    batch: np.ndarray
    output: OutputRequest = OutputRequest()


def read_inference_request(body, model, limits, max_batch_size,
                           data=b""):
    """Check a V2 inference request; return its id, batch and outputs.

    ``data`` is the binary data that followed the request's JSON.
    """
    _check_keys(body, "request", _REQUEST_KEYS, ("inputs",))
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise _invalid('"id" must be a string')
    _check_model(body, model)
    _check_parameters(body, "request")
    output_name = model.contract.output_name
    outputs = _list_of_objects(body.get("outputs", []), "outputs")
    for output in outputs:
        _check_keys(output, "output", {"name", "parameters"}, ("name",))
        _check_parameters(output, "output")
        if output["name"] != output_name:
            raise _invalid(f"unknown output {output['name']!r}; the model "
                           f"has one output, {output_name!r}")
    output_request = read_output_request(body, outputs, model)
    inputs = _list_of_objects(body["inputs"], "inputs")
    raw = binary.split_inputs(inputs, data)
    if len(inputs) != 1:
        raise _invalid(f"send exactly one input, not {len(inputs)}")
    tensor, raw = inputs[0], raw[0]
    required = ("name", "shape", "datatype")
    if raw is None:
        _check_keys(tensor, "input", _INPUT_KEYS, (*required, "data"))
    else:
        # Its elements follow the JSON; "data" would be a second copy.
        _check_keys(tensor, "input", _INPUT_KEYS - {"data"}, required)
    _check_parameters(tensor, "input")
    spec = model.contract.input
    if tensor["datatype"] == "BYTES":
        images = read_encoded_images(tensor, max_batch_size,
                                     limits.max_image_bytes, raw)
        batch = stack([prepare_image(image, spec, limits)
                       for image in images])
    else:
        batch = read_tensor(tensor, spec, model.contract.input_name,
                            max_batch_size, raw)
    return InferenceRequest(request_id, batch, output_request)


def read_tensor(tensor, spec, name, max_batch_size, raw=None):
    """Return the model's input tensor given in a request, as an array.

    ``raw`` holds its elements when they came as binary data.
    """
    datatype = DATATYPES[spec["dtype"]]
    if tensor["name"] != name:
        raise _invalid(f"unknown input {tensor['name']!r}; the model takes "
                       f"{name!r} ({datatype}) or BYTES encoded images")
    if tensor["datatype"] != datatype:
        raise _invalid(f"input {name!r} takes datatype {datatype} or BYTES "
                       f"(encoded images), not {tensor['datatype']!r}")
    shape = read_shape(tensor["shape"])
    expected = [-1, *spec["shape"][1:]]
    if len(shape) != len(expected) or shape[1:] != expected[1:]:
        raise _invalid(f"input shape {shape} does not match {expected}")
    check_batch_size(shape[0], max_batch_size)
    if raw is not None:
        return binary.decode_numbers(raw, spec["dtype"], shape)
    values = flatten(tensor["data"], shape)
    return to_array(values, np.dtype(spec["dtype"])).reshape(shape)


def read_encoded_images(tensor, max_batch_size, max_image_bytes, raw=None):
    """Return the encoded images of a BYTES input.

    Its elements are base64 strings in JSON, or ``raw`` binary data.
    """
    shape = read_shape(tensor["shape"])
    if len(shape) not in (1, 2) or shape[1:] not in ([], [1]):
        raise _invalid(f"a BYTES input has shape [N] or [N, 1], not {shape}")
    check_batch_size(shape[0], max_batch_size)
    if raw is not None:
        return binary.decode_bytes(raw, shape[0])
    content_type = tensor.get("parameters", {}).get("content_type")
    if content_type not in _BYTES_CONTENT_TYPES:
        raise _invalid('BYTES elements must be base64 strings (parameter '
                       f'"content_type": "base64"), not {content_type!r}')
    values = flatten(tensor["data"], shape)
    if not all(isinstance(value, str) for value in values):
        raise _invalid("each BYTES element must be a base64 string")
    return [decode_base64(value, max_image_bytes) for value in values]


def _list_of_objects(value, field):
    """Return value if it is a list of JSON objects."""
    if not isinstance(value, list) or not all(
            isinstance(item, dict) for item in value):
        raise _invalid(f'"{field}" must be a list of objects')
    return value


def _check_keys(value, what, allowed, required):
    """Refuse unknown and missing keys of one JSON object."""
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _invalid(f"unknown {what} field(s): {', '.join(unknown)}")
    missing = [key for key in required if key not in value]
    if missing:
        raise _invalid(f"missing {what} field(s): {', '.join(missing)}")


def _check_model(body, model):
    """Refuse a model name or version in the body that the URL does not name.

    The URL chose the model; the body's fields may only repeat it.
    """
    for field, served in (("model_name", model.name),
                          ("model_version", str(model.version))):
        if field in body and body[field] != served:
            raise _invalid(f'"{field}" is {body[field]!r} but the URL '
                           f"addresses {served!r}")


def _check_parameters(value, what):
    """Refuse parameters that are not an object of strings/numbers/bools."""
    parameters = value.get("parameters", {})
    if not isinstance(parameters, dict) or not all(
            isinstance(item, (str, int, float))
            for item in parameters.values()):
        raise _invalid(f'{what} "parameters" must be an object of strings, '
                       "numbers and booleans")


def _invalid(message):
    """Return the 400 error of a malformed inference request."""
    return InvalidInput(message, code="invalid_inference_request")
