"""Read and write tensors of the V2 binary tensor data extension.

A request or response may carry tensors as raw bytes after its JSON: the
``Inference-Header-Content-Length`` header gives the JSON's length, and
each binary tensor's ``binary_data_size`` parameter its share of the
bytes that follow, in the order of the tensors. Elements are little-endian
and row-major; a BYTES element is a 4-byte little-endian length, then its
bytes. Every size is checked against the body actually received, so no
size a client declares makes the server read or allocate more than that.
"""

import json
import math
import struct

import numpy as np

from app.errors import InvalidInput

HEADER = "Inference-Header-Content-Length"
SIZE = "binary_data_size"
_LENGTH = struct.Struct("<I")
# More digits than any body this service accepts could need.
_MAX_HEADER_DIGITS = 19


def split_body(body, header):
    """Return ``(json_bytes, binary_bytes)`` of a body and its header value."""
    header = header.strip()
    if not (header.isascii() and header.isdigit()
            and len(header) <= _MAX_HEADER_DIGITS):
        raise invalid(f"{HEADER} must be a number of bytes, not {header!r}")
    length = int(header)
    if length > len(body):
        raise invalid(f"{HEADER} is {length} but the body has only "
                      f"{len(body)} bytes")
    return body[:length], body[length:]


def split_inputs(inputs, data):
    """Return each input's binary bytes, or None for an input in JSON.

    ``data`` is what follows the JSON; the inputs' binary sizes must add
    up to exactly its length.
    """
    sizes = [_declared_size(tensor) for tensor in inputs]
    declared = sum(size for size in sizes if size is not None)
    if declared != len(data):
        raise invalid(f"the inputs' {SIZE} parameters add up to {declared} "
                      f"bytes but {len(data)} follow the JSON")
    parts, offset = [], 0
    for size in sizes:
        if size is None:
            parts.append(None)
        else:
            parts.append(data[offset:offset + size])
            offset += size
    return parts


def decode_numbers(data, dtype, shape):
    """Return the binary elements of a numeric tensor as an array."""
    dtype = np.dtype(dtype)
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise invalid(f"{SIZE} is {len(data)} but shape {shape} of "
                      f"{dtype.name} takes {expected} bytes")
    array = np.frombuffer(data, dtype=dtype.newbyteorder("<"))
    array = array.astype(dtype).reshape(shape)
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise invalid(f"data must be finite {dtype.name} numbers")
    return array


def decode_bytes(data, count):
    """Return the count elements of a binary BYTES tensor."""
    elements, offset = [], 0
    for _ in range(count):
        if offset + _LENGTH.size > len(data):
            raise invalid(f"BYTES data ends before element {len(elements)}")
        (size,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + size > len(data):
            raise invalid(f"BYTES element {len(elements)} is {size} bytes "
                          "long but the data ends before that")
        elements.append(data[offset:offset + size])
        offset += size
    if offset != len(data):
        raise invalid(f"BYTES data holds {len(data) - offset} bytes after "
                      f"its {count} elements")
    return elements


def encode_numbers(array):
    """Return a numeric array as little-endian, row-major bytes."""
    return np.ascontiguousarray(
        array, dtype=array.dtype.newbyteorder("<")).tobytes()


def encode_bytes(elements):
    """Return BYTES elements, each as its 4-byte length and its bytes."""
    return b"".join(_LENGTH.pack(len(item)) + item for item in elements)


def frame(response, binary_outputs):
    """Return ``(body, json_length)``: the response's JSON, then its tensors.

    ``binary_outputs`` maps an output's position in ``response["outputs"]``
    to its bytes; those outputs lose their "data" for a binary size.
    """
    for position, data in binary_outputs.items():
        output = response["outputs"][position]
        del output["data"]
        output.setdefault("parameters", {})[SIZE] = len(data)
    header = json.dumps(response).encode("utf-8")
    return b"".join([header, *binary_outputs.values()]), len(header)


def _declared_size(tensor):
    """Return an input's binary_data_size parameter, or None without one."""
    parameters = tensor.get("parameters")
    if not isinstance(parameters, dict) or SIZE not in parameters:
        return None
    size = parameters[SIZE]
    if type(size) is not int or size < 0:
        raise invalid(f"{SIZE} must be a non-negative integer, not "
                      f"{size!r}")
    return size


def invalid(message):
    """Return the 400 error of a malformed binary request."""
    return InvalidInput(message, code="invalid_inference_request")
