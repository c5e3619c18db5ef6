"""Read and write the JSON tensors of the Open Inference Protocol (V2).

An inference request carries one input, in either of two forms:

* the model's own input tensor, e.g. FP32 ``[N, 224, 224, 3]``, already
  pre-processed, its ``data`` flattened in row-major order or nested;
* a BYTES tensor ``[N]`` (or ``[N, 1]``) of encoded images, each element
  a base64 string. JSON has no bytes, so this is how Triton's and KServe's
  clients send binary elements without the binary-data extension, and
  what MLServer marks with the parameter ``"content_type": "base64"``.
"""

import dataclasses
import itertools
import math

import numpy as np

from app.errors import InvalidInput
from app.inference.decoding import decode_base64
from app.inference.pipeline import check_batch_size, prepare_image
from app.inference.preprocessing import stack

DATATYPES = {"float32": "FP32", "uint8": "UINT8", "int8": "INT8"}
PLATFORM = "litert_tflite"
_OUTPUT_DATATYPE = "FP32"  # quantized outputs are de-quantized to float32
_REQUEST_KEYS = {"id", "parameters", "inputs", "outputs"}
_INPUT_KEYS = {"name", "shape", "datatype", "parameters", "data"}
_BYTES_CONTENT_TYPES = {None, "base64"}


@dataclasses.dataclass(frozen=True)
class InferenceRequest:
    """A checked inference request: its id and the model's input batch."""

    request_id: str | None
    batch: np.ndarray


def tensor_metadata(spec, name, datatype=None):
    """Return a model.json tensor as V2 metadata, the batch axis as -1."""
    return {"name": name,
            "datatype": datatype or DATATYPES[spec["dtype"]],
            "shape": [-1, *spec["shape"][1:]]}


def model_metadata(model, versions):
    """Return the V2 metadata of one available model version."""
    contract = model.contract
    return {"name": model.name, "versions": [str(v) for v in versions],
            "platform": PLATFORM,
            "inputs": [tensor_metadata(contract.input, contract.input_name)],
            "outputs": [tensor_metadata(contract.output, contract.output_name,
                                        _OUTPUT_DATATYPE)]}


def read_inference_request(body, model, limits, max_batch_size):
    """Check a V2 inference request and return its id and input batch."""
    _check_keys(body, "request", _REQUEST_KEYS, ("inputs",))
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise _invalid('"id" must be a string')
    _check_parameters(body, "request")
    output_name = model.contract.output_name
    for output in _list_of_objects(body.get("outputs", []), "outputs"):
        _check_keys(output, "output", {"name", "parameters"}, ("name",))
        if output["name"] != output_name:
            raise _invalid(f"unknown output {output['name']!r}; the model "
                           f"has one output, {output_name!r}")
    inputs = _list_of_objects(body["inputs"], "inputs")
    if len(inputs) != 1:
        raise _invalid(f"send exactly one input, not {len(inputs)}")
    tensor = inputs[0]
    _check_keys(tensor, "input", _INPUT_KEYS,
                ("name", "shape", "datatype", "data"))
    _check_parameters(tensor, "input")
    spec = model.contract.input
    if tensor["datatype"] == "BYTES":
        images = read_encoded_images(tensor, max_batch_size,
                                     limits.max_image_bytes)
        batch = stack([prepare_image(data, spec, limits) for data in images])
    else:
        batch = read_tensor(tensor, spec, model.contract.input_name,
                            max_batch_size)
    return InferenceRequest(request_id, batch)


def read_tensor(tensor, spec, name, max_batch_size):
    """Return the model's input tensor given in a request, as an array."""
    datatype = DATATYPES[spec["dtype"]]
    if tensor["name"] != name:
        raise _invalid(f"unknown input {tensor['name']!r}; the model takes "
                       f"{name!r} ({datatype}) or BYTES encoded images")
    if tensor["datatype"] != datatype:
        raise _invalid(f"input {name!r} takes datatype {datatype} or BYTES "
                       f"(encoded images), not {tensor['datatype']!r}")
    shape = _read_shape(tensor["shape"])
    expected = [-1, *spec["shape"][1:]]
    if len(shape) != len(expected) or shape[1:] != expected[1:]:
        raise _invalid(f"input shape {shape} does not match {expected}")
    check_batch_size(shape[0], max_batch_size)
    values = _flatten(tensor["data"], shape)
    return _to_array(values, np.dtype(spec["dtype"])).reshape(shape)


def read_encoded_images(tensor, max_batch_size, max_image_bytes):
    """Return the encoded images of a BYTES input of base64 strings."""
    content_type = tensor.get("parameters", {}).get("content_type")
    if content_type not in _BYTES_CONTENT_TYPES:
        raise _invalid('BYTES elements must be base64 strings (parameter '
                       f'"content_type": "base64"), not {content_type!r}')
    shape = _read_shape(tensor["shape"])
    if len(shape) not in (1, 2) or shape[1:] not in ([], [1]):
        raise _invalid(f"a BYTES input has shape [N] or [N, 1], not {shape}")
    check_batch_size(shape[0], max_batch_size)
    values = _flatten(tensor["data"], shape)
    if not all(isinstance(value, str) for value in values):
        raise _invalid("each BYTES element must be a base64 string")
    return [decode_base64(value, max_image_bytes) for value in values]


def inference_response(model, request_id, probabilities):
    """Return the V2 inference response for a batch of probabilities."""
    response = {"model_name": model.name,
                "model_version": str(model.version)}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = [{
        "name": model.contract.output_name, "datatype": _OUTPUT_DATATYPE,
        "shape": list(probabilities.shape),
        "data": probabilities.astype(np.float32).ravel().tolist()}]
    return response


def _read_shape(shape):
    """Return a shape: a list of non-negative integers."""
    if not isinstance(shape, list) or not all(
            type(size) is int and size >= 0 for size in shape):
        raise _invalid('"shape" must be a list of non-negative integers')
    return shape


def _flatten(data, shape):
    """Return data, flattened or nested to shape, as one flat list."""
    if not isinstance(data, list):
        raise _invalid('"data" must be a JSON array')
    if data and isinstance(data[0], list):
        # Nested data must have exactly the shape, level by level.
        level = [data]
        for size in shape:
            if any(type(item) is not list or len(item) != size
                   for item in level):
                raise _invalid(f"nested data does not have shape {shape}")
            level = list(itertools.chain.from_iterable(level))
        return level
    count = math.prod(shape)
    if len(data) != count:
        raise _invalid(f"data has {len(data)} elements but shape {shape} "
                       f"holds {count}")
    return data


def _to_array(values, dtype):
    """Return numbers as a flat array of dtype; refuse anything else."""
    allowed = {int, float} if dtype.kind == "f" else {int}
    found = {type(value) for value in values}
    if not found <= allowed:
        wrong = ", ".join(sorted(kind.__name__ for kind in found - allowed))
        raise _invalid(f"data of a {DATATYPES[dtype.name]} tensor must be "
                       f"numbers, not {wrong}")
    try:
        wide = np.array(values, dtype=np.float64)
    except OverflowError:
        raise _invalid("data holds a number too large") from None
    if dtype.kind != "f":
        info = np.iinfo(dtype)
        if wide.size and not info.min <= wide.min() <= wide.max() <= info.max:
            raise _invalid(f"data is outside the range of {dtype.name}")
    with np.errstate(over="ignore"):
        array = wide.astype(dtype)
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise _invalid(f"data must be finite {dtype.name} numbers")
    return array


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
