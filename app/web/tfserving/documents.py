"""Write TF Serving's model status and model metadata documents.

They are the JSON that TF Serving prints from its protobuf messages
(``GetModelStatusResponse``, ``GetModelMetadataResponse``): 64-bit
integers as strings, enums by name, every field present, and the
signatures under ``metadata.signature_def.signature_def``.
"""

from app.models.registry import AVAILABLE, FAILED, LOADING

SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
# A version that failed to load is one TF Serving's manager has given up
# on: the END state, with the load's error as its status.
_STATES = {LOADING: "LOADING", AVAILABLE: "AVAILABLE", FAILED: "END"}
DTYPES = {"float32": "DT_FLOAT", "uint8": "DT_UINT8", "int8": "DT_INT8"}
_OUTPUT_DTYPE = "float32"  # quantized outputs are de-quantized to float32


def model_status(versions):
    """Return the status document of some versions, by number."""
    return {"model_version_status": [_version_status(version)
                                     for version in versions]}


def model_metadata(model):
    """Return the metadata document of one available version."""
    contract = model.contract
    signature = {
        "inputs": {contract.input_name: _tensor_info(
            contract.input_name, contract.input["dtype"],
            contract.input["shape"])},
        "outputs": {contract.output_name: _tensor_info(
            contract.output_name, _OUTPUT_DTYPE, contract.output["shape"])},
        "method_name": PREDICT_METHOD,
        "defaults": {},
    }
    return {"model_spec": {"name": model.name, "signature_name": "",
                           "version": str(model.version)},
            "metadata": {"signature_def": {
                "signature_def": {SIGNATURE: signature}}}}


def _version_status(version):
    """Return one ``ModelVersionStatus``."""
    failed = version.state == FAILED
    return {"version": str(version.version),
            "state": _STATES.get(version.state, version.state),
            "status": {"error_code": "UNKNOWN" if failed else "OK",
                       "error_message": version.error if failed else ""}}


def _tensor_info(name, dtype, shape):
    """Return one ``TensorInfo``, its batch axis of unknown size (-1)."""
    return {"dtype": DTYPES[dtype],
            "tensor_shape": {
                "dim": [{"size": str(size), "name": ""}
                        for size in [-1, *shape[1:]]],
                "unknown_rank": False},
            "name": f"{name}:0"}
