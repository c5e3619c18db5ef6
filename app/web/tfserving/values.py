"""Check TF Serving's JSON values: base64 objects, features, tensors.

TF Serving's JSON mapping: a number for a float or integer element,
``{"b64": "..."}`` for bytes, nested lists for a tensor (every list of
one level the same length), and for a tf.Example feature a value or a
flat list of values of one kind (bytes, float or int64).
"""

import itertools

import numpy as np

from app.errors import InvalidInput

_TYPE_NAMES = {"float32": "float", "uint8": "uint8", "int8": "int8"}
_INT64 = np.iinfo(np.int64)


def is_base64(value):
    """Tell whether value is TF Serving's ``{"b64": <string>}``."""
    return (isinstance(value, dict) and len(value) == 1
            and isinstance(value.get("b64"), str))


def check_features(example, what):
    """Refuse an example (or context) that is no map of valid features."""
    if not isinstance(example, dict):
        raise InvalidInput(f"Example must be JSON object but got JSON "
                           f"{type(example).__name__} ({what})")
    for name, content in example.items():
        kinds = {_feature_kind(name, value) for value in (
            content if isinstance(content, list) else [content])}
        if len(kinds) > 1:
            raise InvalidInput(f"Unexpected element type in feature: {name}"
                               f" expecting one of type: "
                               f"{', '.join(sorted(kinds))}")


def read_tensor(values, spec):
    """Return a batch of nested-list tensors as the model's input array."""
    shape = [len(values), *spec["shape"][1:]]
    level = [values]
    for depth, size in enumerate(shape):
        for item in level:
            if type(item) is not list or len(item) != size:
                raise InvalidInput(
                    f"each instance must be a tensor of shape {shape[1:]}; "
                    f"found {_describe(item)} at level {depth} where a list "
                    f"of {size} was expected")
        level = list(itertools.chain.from_iterable(level))
    dtype = np.dtype(spec["dtype"])
    allowed = (int, float) if dtype.kind == "f" else (int,)
    for value in level:
        if type(value) not in allowed:
            raise InvalidInput(f"JSON Value: {_describe(value)} is not of "
                               f"expected type: {_TYPE_NAMES[dtype.name]}")
    try:
        wide = np.array(level, dtype=np.float64)
    except OverflowError:
        raise InvalidInput("a tensor value is too large") from None
    if dtype.kind != "f":
        info = np.iinfo(dtype)
        if not info.min <= wide.min() <= wide.max() <= info.max:
            raise InvalidInput(f"tensor values must be within the range of "
                               f"{dtype.name}")
    with np.errstate(over="ignore"):
        array = wide.astype(dtype)
    if not np.isfinite(array).all():
        raise InvalidInput(f"tensor values must be finite {dtype.name} "
                           "numbers")
    return array.reshape(shape)


def _feature_kind(name, value):
    """Return the feature kind of one value: bytes, float or int64."""
    if isinstance(value, bool):
        return "int64"
    if isinstance(value, int):
        if not _INT64.min <= value <= _INT64.max:
            raise InvalidInput(f"Feature: {name} has an integer beyond "
                               "int64. Only int64_t is supported.")
        return "int64"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str) or is_base64(value):
        return "bytes"
    raise InvalidInput(f"Feature: {name} has element with unexpected JSON "
                       f"type: {_describe(value)}")


def _describe(value):
    """Return a short description of a JSON value for a message."""
    text = repr(value)
    if len(text) > 40:
        text = f"{type(value).__name__} {text[:30]}..."
    return text
