"""The Open Inference Protocol (KServe V2) routes, with the shipped model."""

import base64
import functools
import json

import numpy as np
import pytest

from app.inference.pipeline import ImageLimits, prepare_image
from app.models.registry import FAILED, ModelRegistry, ModelVersion
from tests.conftest import (
    DATA, MODEL_REPOSITORY, Client, RunningServer, make_settings,
    shared_registry)

MODEL = "efficientnet-lite0"
EGYPTIAN_MAU = 285
CHELSEA_JPG = (DATA / "chelsea.jpg").read_bytes()
ASTRONAUT_JPG = (DATA / "astronaut.jpg").read_bytes()
INPUT_SPEC = json.loads(
    (MODEL_REPOSITORY / "1" / "model.json").read_text())["input"]
LIMITS = ImageLimits(max_image_bytes=10 << 20, max_image_pixels=40_000_000)
INFER_V1 = f"/v2/models/{MODEL}/versions/1/infer"
JSON_TYPE = {"Content-Type": "application/json"}


@functools.lru_cache(maxsize=None)
def photo_tensor(photo):
    """Return a photo pre-processed as the model's input, batch axis first."""
    return prepare_image(photo, INPUT_SPEC, LIMITS)[np.newaxis]


def tensor_input(array, nested=False, **overrides):
    """Return a V2 FP32 input holding array, flattened unless nested."""
    tensor = {"name": "image", "shape": list(array.shape),
              "datatype": "FP32",
              "data": array.tolist() if nested else array.ravel().tolist()}
    tensor.update(overrides)
    return tensor


def bytes_input(*photos, **overrides):
    """Return a V2 BYTES input of base64-encoded photos."""
    tensor = {"name": "images", "shape": [len(photos)], "datatype": "BYTES",
              "data": [base64.b64encode(photo).decode("ascii")
                       for photo in photos]}
    tensor.update(overrides)
    return tensor


def infer(client, *inputs, path=INFER_V1, **fields):
    """POST a V2 inference request with the given inputs and fields."""
    return client.post(path, json={"inputs": list(inputs), **fields})


def probabilities_of(response):
    """Return the one output of a successful inference as an array."""
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert len(outputs) == 1
    assert outputs[0]["name"] == "probabilities"
    assert outputs[0]["datatype"] == "FP32"
    data = np.array(outputs[0]["data"], dtype=np.float64)
    return data.reshape(outputs[0]["shape"])


def assert_v2_error(response, status):
    """Check a V2 error: its status, {"error": <message>, "code": <code>}.

    Return the code, so that a test can say which error it expects.
    """
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error", "code"]
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["code"], str) and body["code"]
    return body["code"]


@pytest.fixture
def failing_client(tmp_path):
    """Yield a client of a server whose model version 3 failed to load."""
    versions = dict(shared_registry().versions)
    versions[3] = ModelVersion(3, None, FAILED, error="broken")
    registry = ModelRegistry(versions, 2)
    with RunningServer(make_settings(tmp_path), registry) as running:
        with Client(running.url) as client:
            yield client


def small_client(tmp_path, **overrides):
    """Return a running server with overridden limits and its client."""
    running = RunningServer(make_settings(tmp_path, **overrides))
    return running, Client(running.url)


def test_server_live(client):
    """GET /v2/health/live answers 200 while the server runs."""
    response = client.get("/v2/health/live")
    assert response.status_code == 200
    assert response.json() == {"live": True}


def test_server_ready(client):
    """GET /v2/health/ready answers 200 when every version is loaded."""
    response = client.get("/v2/health/ready")
    assert response.status_code == 200
    assert response.json() == {"ready": True}


def test_failed_version_makes_server_and_model_not_ready(failing_client):
    """A version that failed to load is not ready (4xx) and cannot infer."""
    response = failing_client.get("/v2/health/ready")
    assert response.status_code == 400
    assert response.json() == {"ready": False}
    response = failing_client.get(f"/v2/models/{MODEL}/versions/3/ready")
    assert response.status_code == 400
    assert response.json() == {"name": MODEL, "ready": False}
    ready = failing_client.get(f"/v2/models/{MODEL}/versions/1/ready")
    assert ready.status_code == 200
    assert_v2_error(failing_client.get(f"/v2/models/{MODEL}/versions/3"),
                    503)
    assert_v2_error(infer(failing_client, bytes_input(CHELSEA_JPG),
                          path=f"/v2/models/{MODEL}/versions/3/infer"), 503)


def test_server_metadata(client):
    """GET /v2 gives the server's name, version and extensions."""
    response = client.get("/v2")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"name", "version", "extensions"}
    assert isinstance(body["name"], str) and body["name"]
    assert isinstance(body["version"], str) and body["version"]
    assert body["extensions"] == ["binary_tensor_data", "classification",
                                  "model_repository"]


@pytest.mark.parametrize("path, datatype", [
    (f"/v2/models/{MODEL}", "INT8"),
    (f"/v2/models/{MODEL}/versions/1", "FP32"),
    (f"/v2/models/{MODEL}/versions/2", "FP32"),
    (f"/v2/models/{MODEL}/versions/3", "INT8")])
def test_model_metadata(client, path, datatype):
    """Model metadata gives the tensors with -1 as the batch axis.

    Without a version it is the default one's, 3, the full-integer
    version, which takes int8 pixels (minus 128).
    """
    response = client.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == MODEL
    assert body["versions"] == ["1", "2", "3"]
    assert isinstance(body["platform"], str) and body["platform"]
    assert body["inputs"] == [{"name": "image", "datatype": datatype,
                               "shape": [-1, 224, 224, 3]}]
    assert body["outputs"] == [{"name": "probabilities", "datatype": "FP32",
                                "shape": [-1, 1000]}]


@pytest.mark.parametrize("path", [f"/v2/models/{MODEL}/ready",
                                  f"/v2/models/{MODEL}/versions/1/ready"])
def test_model_ready(client, path):
    """A loaded model version is ready."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {"name": MODEL, "ready": True}


def test_tensor_gives_the_same_probabilities_as_predict(client):
    """A pre-processed tensor of a photo matches POST /predict/model/v1."""
    response = infer(client, tensor_input(photo_tensor(CHELSEA_JPG)))
    body = response.json()
    assert body["model_name"] == MODEL
    assert body["model_version"] == "1"
    assert "id" not in body
    probabilities = probabilities_of(response)
    assert probabilities.shape == (1, 1000)
    assert int(probabilities[0].argmax()) == EGYPTIAN_MAU
    classes = client.post(
        "/predict/model/v1", params={"top_k": 1000},
        files=[("image", ("chelsea.jpg", CHELSEA_JPG, "image/jpeg"))],
    ).json()["predictions"][0]["classes"]
    expected = np.zeros(1000)
    for item in classes:
        expected[item["index"]] = item["score"]
    assert classes[0]["index"] == EGYPTIAN_MAU
    np.testing.assert_allclose(probabilities[0], expected, rtol=0, atol=1e-5)


def test_flattened_and_nested_data_give_the_same_output(client):
    """Row-major flattened data and nested lists are the same tensor."""
    tensor = photo_tensor(CHELSEA_JPG)
    flat = probabilities_of(infer(client, tensor_input(tensor)))
    nested = probabilities_of(infer(client, tensor_input(tensor, True)))
    np.testing.assert_array_equal(flat, nested)


@pytest.mark.parametrize("overrides", [
    {}, {"shape": [1, 1]}, {"parameters": {"content_type": "base64"}}])
def test_bytes_input_gives_the_same_top_1(client, overrides):
    """Encoded images as base64 BYTES are decoded and pre-processed."""
    tensor = bytes_input(CHELSEA_JPG, **overrides)
    if overrides.get("shape") == [1, 1]:
        tensor["data"] = [tensor["data"]]
    probabilities = probabilities_of(infer(client, tensor))
    assert probabilities.shape == (1, 1000)
    assert int(probabilities[0].argmax()) == EGYPTIAN_MAU
    from_tensor = probabilities_of(
        infer(client, tensor_input(photo_tensor(CHELSEA_JPG))))
    np.testing.assert_allclose(probabilities, from_tensor, atol=1e-5)


def test_request_id_is_echoed(client):
    """The id of a request comes back in its response."""
    response = infer(client, bytes_input(CHELSEA_JPG), id="request-42")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "request-42"


def test_batch_of_two(client):
    """A batch of two images gives a [2, 1000] output, row by row."""
    batch = np.concatenate([photo_tensor(CHELSEA_JPG),
                            photo_tensor(ASTRONAUT_JPG)])
    probabilities = probabilities_of(infer(client, tensor_input(batch)))
    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-3)
    assert int(probabilities[0].argmax()) == EGYPTIAN_MAU
    assert int(probabilities[1].argmax()) != EGYPTIAN_MAU
    from_bytes = probabilities_of(
        infer(client, bytes_input(CHELSEA_JPG, ASTRONAUT_JPG)))
    np.testing.assert_allclose(from_bytes, probabilities, atol=1e-5)


def test_default_version_and_requested_output(client):
    """Without a version the default one (3) answers; outputs may be named."""
    response = infer(client, bytes_input(CHELSEA_JPG),
                     path=f"/v2/models/{MODEL}/infer",
                     outputs=[{"name": "probabilities"}],
                     parameters={"binary_data_output": False})
    assert response.json()["model_version"] == "3"
    assert int(probabilities_of(response)[0].argmax()) == EGYPTIAN_MAU


def test_body_without_content_type_is_read_as_json(client):
    """Triton's HTTP client sends its JSON body without a Content-Type."""
    body = json.dumps({"inputs": [bytes_input(CHELSEA_JPG)]}).encode()
    response = client.post(INFER_V1, data=body)
    assert "Content-Type" not in response.request.headers
    assert int(probabilities_of(response)[0].argmax()) == EGYPTIAN_MAU


def small_tensor_input(**overrides):
    """Return a valid FP32 input of chelsea with some fields replaced."""
    return tensor_input(photo_tensor(CHELSEA_JPG), **overrides)


def _with_element(value):
    """Return chelsea's flattened data with its first element replaced."""
    data = photo_tensor(CHELSEA_JPG).ravel().tolist()
    data[0] = value
    return data


@pytest.mark.parametrize("tensor", [
    small_tensor_input(shape=[1, 224, 224]),
    small_tensor_input(shape=[1, 3, 224, 224]),
    small_tensor_input(shape=[0, 224, 224, 3], data=[]),
    small_tensor_input(shape=[1, 224, 224, -3]),
    small_tensor_input(shape="1,224,224,3"),
    small_tensor_input(data=_with_element(0.5)[:-1]),
    small_tensor_input(data=[[0.5] * 3] * (224 * 224)),
    small_tensor_input(datatype="FP64"),
    small_tensor_input(datatype="INT32"),
    small_tensor_input(data=_with_element("0.5")),
    small_tensor_input(data=_with_element(True)),
    small_tensor_input(data=_with_element(None)),
    small_tensor_input(data=_with_element(1e39)),
    small_tensor_input(name="pixels"),
    small_tensor_input(data="0.5"),
    small_tensor_input(extra=1),
    bytes_input(CHELSEA_JPG, data=["not base64!"]),
    bytes_input(CHELSEA_JPG, data=[base64.b64encode(b"no image").decode()]),
    bytes_input(CHELSEA_JPG, data=[7]),
    bytes_input(CHELSEA_JPG, shape=[1, 2]),
    bytes_input(CHELSEA_JPG, parameters={"content_type": "str"}),
], ids=["rank", "channels-first", "empty-batch", "negative", "shape-string",
        "count-mismatch", "nested-mismatch", "fp64", "int32", "string",
        "bool", "null", "overflow", "input-name", "data-string",
        "unknown-field", "bad-base64", "not-an-image", "bytes-number",
        "bytes-shape", "bytes-content-type"])
def test_invalid_input_is_400(client, tensor):
    """Every malformed input tensor answers 400 {"error": message}."""
    assert_v2_error(infer(client, tensor), 400)


@pytest.mark.parametrize("body", [
    b'{"inputs": [', b"[]", b'{"inputs": []}', b'{"id": "x"}',
    b'{"inputs": {}}', b'{"id": 42, "inputs": []}',
    b'{"inputs": [{"name": "image"}], "outputs": [{"name": "logits"}]}',
    b'{"inputs": [{}], "parameters": []}',
], ids=["truncated", "array", "no-input", "missing-inputs",
        "inputs-object", "id-number", "unknown-output",
        "parameters-list"])
def test_malformed_request_is_400(client, body):
    """Malformed JSON and malformed request objects answer 400."""
    assert_v2_error(client.post(INFER_V1, data=body, headers=JSON_TYPE), 400)


@pytest.mark.parametrize("literal, word", [
    ("NaN", "NaN"), ("Infinity", "Infinity"), ("1e400", "finite")])
def test_non_finite_number_is_400(client, literal, word):
    """NaN, Infinity and numbers beyond a double (1e400) are refused."""
    body = json.dumps({"inputs": [small_tensor_input(
        data=_with_element("NUMBER"))]}).replace('"NUMBER"', literal)
    response = client.post(INFER_V1, data=body, headers=JSON_TYPE)
    assert_v2_error(response, 400)
    assert word in response.json()["error"]


def test_two_inputs_are_400(client):
    """The model takes one input; a second one is refused."""
    tensor = bytes_input(CHELSEA_JPG)
    assert_v2_error(infer(client, tensor, tensor), 400)


def binary_request(header, *tensors):
    """Return a body and headers: JSON header, then each tensor's bytes."""
    head = json.dumps(header).encode()
    return (b"".join([head, *tensors]),
            {"Inference-Header-Content-Length": str(len(head)),
             "Content-Type": "application/octet-stream"})


def length_prefixed(*elements):
    """Return BYTES elements as the extension lays them out."""
    return b"".join(len(item).to_bytes(4, "little") + item
                    for item in elements)


def split_binary_response(response):
    """Return the JSON header of a binary response and the bytes after it."""
    assert response.status_code == 200, response.text
    length = int(response.headers["Inference-Header-Content-Length"])
    assert response.headers["Content-Type"] == "application/octet-stream"
    return json.loads(response.content[:length]), response.content[length:]


def test_binary_request_as_the_extension_describes(client):
    """The extension's own example: binary input and output, model_name."""
    tensor = photo_tensor(CHELSEA_JPG).astype("<f4").tobytes()
    body, headers = binary_request({
        "model_name": MODEL,
        "inputs": [{"name": "image", "shape": [1, 224, 224, 3],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(tensor)}}],
        "outputs": [{"name": "probabilities",
                     "parameters": {"binary_data": True}}]}, tensor)
    header, data = split_binary_response(
        client.post(INFER_V1, data=body, headers=headers))
    output = header["outputs"][0]
    assert output["parameters"] == {"binary_data_size": 4000}
    assert "data" not in output and len(data) == 4000
    probabilities = np.frombuffer(data, dtype="<f4").reshape(output["shape"])
    as_json = probabilities_of(
        infer(client, tensor_input(photo_tensor(CHELSEA_JPG))))
    np.testing.assert_array_equal(probabilities, as_json)


def test_binary_jpeg_elements(client):
    """BYTES elements come as a 4-byte length and the file's bytes."""
    data = length_prefixed(CHELSEA_JPG, ASTRONAUT_JPG)
    body, headers = binary_request({"inputs": [{
        "name": "images", "shape": [2], "datatype": "BYTES",
        "parameters": {"binary_data_size": len(data)}}]}, data)
    response = client.post(INFER_V1, data=body, headers=headers)
    probabilities = probabilities_of(response)
    from_base64 = probabilities_of(
        infer(client, bytes_input(CHELSEA_JPG, ASTRONAUT_JPG)))
    np.testing.assert_allclose(probabilities, from_base64, atol=1e-6)


def test_binary_classification_output(client):
    """The top classes come back binary as length-prefixed strings."""
    response = infer(client, bytes_input(CHELSEA_JPG), outputs=[{
        "name": "probabilities",
        "parameters": {"classification": 2, "binary_data": True}}])
    header, data = split_binary_response(response)
    output = header["outputs"][0]
    assert (output["datatype"], output["shape"]) == ("BYTES", [1, 2])
    size = int.from_bytes(data[:4], "little")
    first = data[4:4 + size].decode()
    assert first.split(":")[1:] == [str(EGYPTIAN_MAU), "Egyptian Mau"]
    assert len(data) == output["parameters"]["binary_data_size"]


def _fp32_binary(**changes):
    """Return a binary FP32 request for chelsea with some parts changed."""
    tensor = changes.pop("tensor", photo_tensor(CHELSEA_JPG).astype(
        "<f4").tobytes())
    declared = changes.pop("size", len(tensor))
    spec = {"name": "image", "shape": [1, 224, 224, 3], "datatype": "FP32",
            "parameters": {"binary_data_size": declared}, **changes}
    return binary_request({"inputs": [spec]}, tensor)


def _with_header(request, value):
    """Return a binary request whose header length is replaced."""
    body, headers = request
    return body, {**headers, "Inference-Header-Content-Length": value}


def _nan_tensor():
    """Return chelsea's tensor bytes with a NaN in it."""
    array = photo_tensor(CHELSEA_JPG).astype("<f4").copy()
    array.flat[7] = np.nan
    return array.tobytes()


def _bytes_binary(data, shape=(1,)):
    """Return a binary BYTES request carrying data as it is."""
    return binary_request({"inputs": [{
        "name": "images", "shape": list(shape), "datatype": "BYTES",
        "parameters": {"binary_data_size": len(data)}}]}, data)


@pytest.mark.parametrize("request_", [
    _with_header(_fp32_binary(), "ten"),
    _with_header(_fp32_binary(), "-1"),
    _with_header(_fp32_binary(), str(10 ** 9)),
    _with_header(_fp32_binary(), "0"),
    _fp32_binary(size=100),
    _fp32_binary(tensor=b"\0" * 12, size=12),
    _fp32_binary(size=-4),
    _fp32_binary(size=True),
    _fp32_binary(size="602112"),
    _fp32_binary(data=[0.5]),
    _fp32_binary(tensor=_nan_tensor()),
    _bytes_binary(length_prefixed(CHELSEA_JPG)[:-1]),
    _bytes_binary(length_prefixed(CHELSEA_JPG) + b"\0"),
    _bytes_binary(b"\xff\xff\xff\xff" + CHELSEA_JPG),
    _bytes_binary(b"\x01\0"),
    _bytes_binary(length_prefixed(b"not an image")),
], ids=["header-word", "header-negative", "header-beyond-body",
        "header-empty-json", "sizes-short", "tensor-size-wrong",
        "size-negative", "size-bool", "size-string", "data-and-binary",
        "nan", "element-truncated", "trailing-bytes", "length-overflow",
        "length-truncated", "not-an-image"])
def test_malformed_binary_request_is_400(client, request_):
    """Every size is checked against the bytes that actually came."""
    body, headers = request_
    assert_v2_error(client.post(INFER_V1, data=body, headers=headers), 400)


@pytest.mark.parametrize("fields", [
    {"model_name": MODEL}, {"model_name": MODEL, "model_version": "1"}])
def test_model_name_and_version_matching_the_url(client, fields):
    """What KServe's and Triton's clients put in the body is accepted."""
    response = infer(client, bytes_input(CHELSEA_JPG), **fields)
    assert int(probabilities_of(response)[0].argmax()) == EGYPTIAN_MAU


@pytest.mark.parametrize("path, fields", [
    (INFER_V1, {"model_name": "resnet50"}),
    (INFER_V1, {"model_version": "2"}),
    (INFER_V1, {"model_version": 1}),
    (f"/v2/models/{MODEL}/infer", {"model_version": "1"}),
    (INFER_V1, {"model_name": None}),
])
def test_model_name_or_version_not_matching_the_url_is_400(client, path,
                                                           fields):
    """The URL chooses the model; a body naming another one is refused."""
    response = infer(client, bytes_input(CHELSEA_JPG), path=path, **fields)
    assert_v2_error(response, 400)
    assert "model_" in response.json()["error"]


@pytest.mark.parametrize("outputs, parameters", [
    ([{"name": "probabilities", "parameters": {"binary_data": "yes"}}], {}),
    ([], {"binary_data_output": 1}),
    ([{"name": "probabilities", "parameters": {"classification": 0.5}}],
     {}),
    ([{"name": "probabilities", "parameters": {"classification": 1001}}],
     {}),
    ([{"name": "probabilities",
       "parameters": {"shared_memory_region": "r"}}], {}),
    ([{"name": "probabilities"}, {"name": "probabilities"}], {}),
    ([{"name": "probabilities", "parameters": []}], {}),
], ids=["binary-data-string", "binary-output-number",
        "classification-float", "classification-too-many", "shared-memory",
        "output-twice", "parameters-list"])
def test_malformed_output_request_is_400(client, outputs, parameters):
    """Output parameters of the wrong type or beyond the model are refused."""
    response = infer(client, bytes_input(CHELSEA_JPG), outputs=outputs,
                     parameters=parameters)
    assert_v2_error(response, 400)


def test_non_json_body_is_415(client):
    """A body declared as another media type is refused."""
    response = client.post(INFER_V1, data=b"x",
                           headers={"Content-Type": "text/plain"})
    assert_v2_error(response, 415)


@pytest.mark.parametrize("path", [
    "/v2/models/resnet50/infer", f"/v2/models/{MODEL}/versions/9/infer",
    f"/v2/models/{MODEL}/versions/one/infer",
    f"/v2/models/{MODEL}/versions/-1/infer"])
def test_unknown_model_or_version_is_404_on_infer(client, path):
    """Inference on an unknown model name or version answers 404."""
    assert_v2_error(infer(client, bytes_input(CHELSEA_JPG), path=path), 404)


@pytest.mark.parametrize("path", [
    "/v2/models/resnet50", "/v2/models/resnet50/ready",
    f"/v2/models/{MODEL}/versions/9", f"/v2/models/{MODEL}/versions/9/ready",
    "/v2/nothing"])
def test_unknown_model_version_or_path_is_404(client, path):
    """Metadata and readiness of unknown models and versions answer 404."""
    assert_v2_error(client.get(path), 404)


@pytest.mark.parametrize("method, path", [
    ("GET", INFER_V1), ("PUT", f"/v2/models/{MODEL}"),
    ("POST", "/v2/health/live"), ("DELETE", "/v2")])
def test_wrong_method_is_405(client, method, path):
    """A known /v2 path with the wrong method answers 405 and Allow."""
    response = client.request(method, path)
    assert_v2_error(response, 405)
    assert response.headers["Allow"]


def test_other_routes_keep_their_error_shape(client):
    """Outside /v2 errors still carry a code and a message."""
    response = client.get("/models/v9")
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"code", "message"}
    assert set(client.get("/v2x").json()["error"]) == {"code", "message"}


def test_too_big_batch_is_413(tmp_path):
    """Batches over max_batch_size are refused before decoding anything."""
    running, client = small_client(tmp_path, max_batch_size=2)
    with running, client:
        photos = [CHELSEA_JPG] * 3
        assert_v2_error(infer(client, bytes_input(*photos)), 413)
        tensor = small_tensor_input(shape=[3, 224, 224, 3], data=[])
        assert_v2_error(infer(client, tensor), 413)
        response = infer(client, bytes_input(*photos[:2]))
        assert probabilities_of(response).shape == (2, 1000)


def test_too_large_body_is_413(tmp_path):
    """Bodies over max_upload_bytes are refused with a V2 error."""
    running, client = small_client(tmp_path, max_upload_bytes=4096,
                                   max_image_bytes=4096)
    with running, client:
        assert_v2_error(infer(client, bytes_input(CHELSEA_JPG)), 413)
