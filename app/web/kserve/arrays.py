"""Turn the JSON data of a V2 tensor into a NumPy array, or refuse it.

``data`` is flat (row-major) or nested exactly to the tensor's shape, and
its elements are numbers of the tensor's datatype: no strings, booleans
or nulls, nothing outside the datatype's range, nothing non-finite.
"""

import itertools
import math

import numpy as np

from app.errors import InvalidInput
from app.web.kserve.responses import DATATYPES


def read_shape(shape):
    """Return a shape: a list of non-negative integers."""
    if not isinstance(shape, list) or not all(
            type(size) is int and size >= 0 for size in shape):
        raise _invalid('"shape" must be a list of non-negative integers')
    return shape


def flatten(data, shape):
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


def to_array(values, dtype):
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


def _invalid(message):
    """Return the 400 error of a malformed inference request."""
    return InvalidInput(message, code="invalid_inference_request")
