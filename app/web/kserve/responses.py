"""Write V2 responses: metadata, and outputs as their request asked.

A request names the outputs it wants and how: each as JSON or binary
(the binary tensor data extension's ``binary_data`` parameter, defaulting
to the request's ``binary_data_output``), and either the raw tensor or
its top classes (the classification extension: ``classification`` N
gives a BYTES ``[batch, N]`` tensor of ``"<score>:<index>:<label>"``).
"""

import dataclasses

import numpy as np

from app.errors import InvalidInput
from app.inference.postprocessing import top_indices
from app.web.kserve import binary

DATATYPES = {"float32": "FP32", "uint8": "UINT8", "int8": "INT8"}
PLATFORM = "litert_tflite"
_OUTPUT_DATATYPE = "FP32"  # quantized outputs are de-quantized to float32
_UNSUPPORTED_PREFIX = "shared_memory"


@dataclasses.dataclass(frozen=True)
class OutputRequest:
    """How the model's one output goes back: binary or not, classes or not."""

    binary: bool = False
    classification: int = 0


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


def read_output_request(body, outputs, model):
    """Return how to send the output, from a checked request's fields.

    ``outputs`` is the request's list of requested-output objects, each
    with a "name" and optional "parameters" already checked as objects.
    """
    binary_default = _flag(body.get("parameters", {}), "binary_data_output",
                           False)
    if not outputs:
        return OutputRequest(binary_default)
    if len(outputs) > 1:
        raise _invalid("the model has one output; request it once")
    parameters = outputs[0].get("parameters", {})
    unsupported = sorted(key for key in parameters
                         if key.startswith(_UNSUPPORTED_PREFIX))
    if unsupported:
        raise _invalid("the shared-memory extension is not supported: "
                       + ", ".join(unsupported))
    count = parameters.get("classification", 0)
    if type(count) is not int or not 0 <= count <= len(model.labels):
        raise _invalid('"classification" must be an integer from 1 to '
                       f"{len(model.labels)}")
    return OutputRequest(_flag(parameters, "binary_data", binary_default),
                         count)


def inference_response(model, request_id, probabilities, output):
    """Return ``(response, binary_outputs)`` for a batch of probabilities.

    ``binary_outputs`` is what :func:`binary.frame` takes, empty when the
    response is all JSON.
    """
    response = {"model_name": model.name,
                "model_version": str(model.version)}
    if request_id is not None:
        response["id"] = request_id
    values = probabilities.astype(np.float32)
    if output.classification:
        tensor = _classes(values, output.classification, model.labels)
    else:
        tensor = {"datatype": _OUTPUT_DATATYPE, "shape": list(values.shape),
                  "data": values.ravel().tolist()}
    response["outputs"] = [{"name": model.contract.output_name, **tensor}]
    if not output.binary:
        return response, {}
    raw = (binary.encode_bytes([item.encode("utf-8")
                                for item in tensor["data"]])
           if output.classification else binary.encode_numbers(values))
    return response, {0: raw}


def _classes(probabilities, count, labels):
    """Return the classification extension's BYTES tensor of top classes."""
    # Scores as C++'s std::to_string writes them, as Triton does.
    data = [f"{row[index]:f}:{index}:{labels[index]}"
            for row in probabilities for index in top_indices(row, count)]
    return {"datatype": "BYTES", "shape": [len(probabilities), count],
            "data": data}


def _flag(parameters, name, default):
    """Return a boolean parameter, refusing any other type."""
    value = parameters.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(f'"{name}" must be true or false')
    return value


def _invalid(message):
    """Return the 400 error of a malformed inference request."""
    return InvalidInput(message, code="invalid_inference_request")
