"""The TF Serving REST API under /v1, with the request bodies of its docs.

TF Serving's api_rest.md shows its requests on toy models (scalars in,
scalars out); here each is adapted to this model, whose one input is an
image, and the answer is checked field by field against the shapes that
api_rest.md and TF Serving's handler give. Expected classes come from
POST /predict/model, and tensors are pre-processed here with Pillow and
NumPy from what model.json says.
"""

import base64

import numpy as np
import pytest
from PIL import Image

from app.models.registry import FAILED, ModelRegistry, ModelVersion
from app.models.serving import ServingConfig
from tests.conftest import (
    DATA, Client, RunningServer, make_settings, shared_registry)

MODEL = "efficientnet-lite0"
EGYPTIAN_MAU = 285
CHELSEA_JPG = (DATA / "chelsea.jpg").read_bytes()
ASTRONAUT_JPG = (DATA / "astronaut.jpg").read_bytes()
CHELSEA_B64 = {"b64": base64.b64encode(CHELSEA_JPG).decode("ascii")}
ASTRONAUT_B64 = {"b64": base64.b64encode(ASTRONAUT_JPG).decode("ascii")}
BASE = f"/v1/models/{MODEL}"


def chelsea_tensor():
    """Return chelsea as one [224, 224, 3] instance, as nested lists.

    model.json: RGB, resized to 224x224 bilinearly, then (x - 127) / 128.
    """
    with Image.open(DATA / "chelsea.jpg") as image:
        pixels = image.convert("RGB").resize((224, 224),
                                             Image.Resampling.BILINEAR)
    return ((np.asarray(pixels, dtype=np.float32) - 127.0) / 128.0).tolist()


def top_classes(client, photo, top_k):
    """Return what POST /predict/model gives a photo, best first."""
    response = client.post(
        "/predict/model", params={"top_k": top_k},
        files=[("image", ("photo.jpg", photo, "image/jpeg"))])
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]["classes"]


def assert_tf_error(response, status):
    """Check TF Serving's error: the status, ``{"error": <message>}``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert isinstance(body["error"], str) and body["error"]
    return body["error"]


def assert_distributions(rows, count):
    """Check rows of class probabilities; return them as an array."""
    array = np.array(rows, dtype=np.float64)
    assert array.shape == (count, 1000)
    np.testing.assert_allclose(array.sum(axis=1), 1, atol=1e-3)
    return array


def test_model_status_as_in_the_docs(client):
    """The docs' ``curl .../v1/models/<name>``: every version, by string."""
    response = client.get(BASE)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"model_version_status": [
        {"version": version, "state": "AVAILABLE",
         "status": {"error_code": "OK", "error_message": ""}}
        for version in ("1", "2", "3")]}
    one = client.get(f"{BASE}/versions/1").json()
    assert [item["version"] for item in one["model_version_status"]] == ["1"]


@pytest.mark.parametrize("path", [f"{BASE}/metadata",
                                  f"{BASE}/versions/1/metadata"])
def test_model_metadata_has_tf_servings_shape(client, path):
    """model_spec, then the serving_default signature's TensorInfos."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["model_spec", "metadata"]
    spec = body["model_spec"]
    version = "1" if "versions" in path else "3"
    assert spec == {"name": MODEL, "signature_name": "",
                    "version": version}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert list(signatures) == ["serving_default"]
    signature = signatures["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["defaults"] == {}
    image = signature["inputs"]["image"]
    # Version 3 is full integer: its input is the pixels minus 128.
    assert image["dtype"] == ("DT_FLOAT" if version == "1" else "DT_INT8")
    assert image["tensor_shape"] == {
        "dim": [{"size": size, "name": ""}
                for size in ("-1", "224", "224", "3")],
        "unknown_rank": False}
    assert isinstance(image["name"], str) and image["name"]
    probabilities = signature["outputs"]["probabilities"]
    assert probabilities["dtype"] == "DT_FLOAT"
    assert [dim["size"] for dim in
            probabilities["tensor_shape"]["dim"]] == ["-1", "1000"]


@pytest.mark.parametrize("body, key", [
    ({"instances": [chelsea_tensor()]}, "predictions"),
    ({"instances": [{"image": chelsea_tensor()}]}, "predictions"),
    ({"instances": [CHELSEA_B64]}, "predictions"),
    ({"instances": [{"image_bytes": CHELSEA_B64}]}, "predictions"),
    ({"signature_name": "serving_default",
      "instances": [{"image": CHELSEA_B64}]}, "predictions"),
    ({"inputs": [chelsea_tensor()]}, "outputs"),
    ({"inputs": {"image": [chelsea_tensor()]}}, "outputs"),
    ({"inputs": [CHELSEA_B64]}, "outputs"),
    ({"inputs": {"image_bytes": [CHELSEA_B64]}}, "outputs"),
], ids=["row-tensor", "row-named-tensor", "row-b64", "row-named-b64",
        "row-signature", "columnar-tensor", "columnar-named-tensor",
        "columnar-b64", "columnar-named-b64"])
def test_predict_rows_and_columns(client, body, key):
    """Rows answer "predictions", columns "outputs": one list per image."""
    response = client.post(f"{BASE}/versions/1:predict", json=body)
    assert response.status_code == 200, response.text
    assert list(response.json()) == [key]
    rows = assert_distributions(response.json()[key], 1)
    expected = top_classes(client, CHELSEA_JPG, 1)[0]["index"]
    assert expected == EGYPTIAN_MAU
    assert int(rows[0].argmax()) == expected


def test_predict_batch_keeps_the_order(client):
    """Two instances give two predictions, in the order sent."""
    response = client.post(f"{BASE}:predict", json={
        "instances": [CHELSEA_B64, ASTRONAUT_B64]})
    rows = assert_distributions(response.json()["predictions"], 2)
    assert int(rows[0].argmax()) == top_classes(
        client, CHELSEA_JPG, 1)[0]["index"]
    assert int(rows[1].argmax()) == top_classes(
        client, ASTRONAUT_JPG, 1)[0]["index"]


def test_body_is_json_whatever_its_content_type(client):
    """Like TF Serving, the body is read as JSON: ``curl -d`` works."""
    response = client.post(
        f"{BASE}:predict", data='{"instances": [%s]}' % (
            '{"b64": "%s"}' % CHELSEA_B64["b64"]),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text


def test_classify_as_in_the_docs(client):
    """The docs' classify body: results are [label, score] per example."""
    response = client.post(f"{BASE}:classify", json={
        "signature_name": "serving_default",
        "examples": [{"image": CHELSEA_B64, "caption": "seaside"},
                     {"image": ASTRONAUT_B64, "caption": "mountains"}]})
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["results"]
    results = response.json()["results"]
    assert len(results) == 2
    for classes, photo in zip(results, (CHELSEA_JPG, ASTRONAUT_JPG)):
        expected = top_classes(client, photo, len(classes))
        assert len(classes) == 5
        for (label, score), item in zip(classes, expected):
            assert isinstance(label, str) and isinstance(score, float)
            assert label == item["label"]
            assert abs(score - item["score"]) < 1e-6
    assert results[0][0][0] == "Egyptian Mau"


def test_classify_reads_the_image_from_the_context(client):
    """A feature in "context" is every example's; lists of one value too."""
    response = client.post(f"{BASE}:classify", json={
        "context": {"image_bytes": [CHELSEA_B64]},
        "examples": [{"caption": "seaside"}, {"weight": [1.5, 2.0]}]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [classes[0][0] for classes in results] == ["Egyptian Mau"] * 2


def test_regress_is_refused_as_for_a_classifier(client):
    """The docs' regress call: this model has no regression signature."""
    response = client.post(f"{BASE}:regress", json={
        "examples": [{"x": 1.0}, {"x": 2.0}]})
    assert "regress" in assert_tf_error(response, 400)
    response = client.post(f"{BASE}:regress", json={
        "signature_name": "tensorflow/serving/regress",
        "examples": [{"x": 1.0}, {"x": 2.0}]})
    assert "signature" in assert_tf_error(response, 400)


def test_unknown_model_is_404_as_in_the_docs(client):
    """The docs' error example: POST /v1/models/half:predict."""
    response = client.post("/v1/models/half:predict",
                           json={"instances": [1.0, 5.0]})
    assert "half" in assert_tf_error(response, 404)
    assert_tf_error(client.get("/v1/models/half"), 404)
    assert_tf_error(client.get("/v1/models/half/metadata"), 404)


@pytest.mark.parametrize("method, path, status", [
    ("POST", f"{BASE}/versions/9:predict", 404),
    ("GET", f"{BASE}/versions/9", 404),
    ("GET", f"{BASE}/versions/9/metadata", 404),
    ("POST", f"{BASE}/versions/HELLO:predict", 400),
    ("POST", f"{BASE}/versions/{2 ** 64}:predict", 400),
    ("POST", f"{BASE}/versions/1/labels/stable:predict", 400),
    ("GET", f"{BASE}/versions/1/labels/stable", 400),
    ("POST", f"{BASE}/labels/nothing:predict", 400),
    ("GET", f"{BASE}/labels/nothing/metadata", 400),
    ("POST", f"{BASE}:PREDICT", 400),
    ("POST", f"{BASE}:explain", 400),
    ("POST", f"{BASE}/metadata", 405),
    ("GET", "/v1/models", 400),
    ("GET", "/v1/foo", 400),
    ("GET", f"{BASE}:predict", 405),
    ("DELETE", BASE, 405),
], ids=["version-unknown", "status-version-unknown",
        "metadata-version-unknown", "version-word", "version-overflow",
        "version-and-label", "status-version-and-label", "label-unknown",
        "metadata-label-unknown", "verb-upper-case", "verb-unknown",
        "post-metadata", "no-model", "unknown-path", "get-predict",
        "delete"])
def test_bad_path_or_version(client, method, path, status):
    """TF Serving's statuses: unknown version 404, malformed paths 400."""
    kwargs = {"json": {"instances": [CHELSEA_B64]}} if method == "POST" else {}
    assert_tf_error(client.request(method, path, **kwargs), status)


@pytest.mark.parametrize("body", [
    b"", b"instances = [1, 2]", b'{"instances": [', b"[]",
    b'{"instances": [{"b64": "x"}], "instances": []}',
], ids=["empty", "not-json", "truncated", "array", "duplicate-key"])
def test_malformed_json_is_400(client, body):
    """A body that is no JSON object is refused with TF Serving's shape."""
    response = client.post(f"{BASE}:predict", data=body,
                           headers={"Content-Type": "application/json"})
    assert_tf_error(response, 400)


@pytest.mark.parametrize("body", [
    {}, {"instances": [CHELSEA_B64], "inputs": [CHELSEA_B64]},
    {"instances": CHELSEA_B64}, {"instances": []}, {"inputs": CHELSEA_B64},
    {"inputs": {"image": [CHELSEA_B64], "other": []}},
    {"inputs": "x"}, {"signature_name": 100, "instances": [CHELSEA_B64]},
    {"signature_name": "classify_objects", "instances": [CHELSEA_B64]},
    {"instances": [CHELSEA_B64, chelsea_tensor()]},
    {"instances": [CHELSEA_B64, {"image": CHELSEA_B64}]},
    {"instances": [{"image": CHELSEA_B64}, {"image_bytes": CHELSEA_B64}]},
    {"instances": [{"pixels": chelsea_tensor()}]},
    {"instances": [{"image_bytes": chelsea_tensor()}]},
    {"instances": [{"b64": "not base64!"}]},
    {"instances": [{"b64": base64.b64encode(b"no image").decode()}]},
    {"instances": [chelsea_tensor()[:100]]},
    {"instances": [[[[0.5] * 3] * 224] * 223 + [[[0.5] * 4] * 224]]},
    {"instances": [[[["0.5"] * 3] * 224] * 224]},
    {"instances": [[[[True] * 3] * 224] * 224]},
    {"instances": [[[[1e39] * 3] * 224] * 224]},
    {"instances": [1.0, 2.0, 5.0]},
], ids=["no-input", "both-formats", "instances-object", "instances-empty",
        "inputs-scalar", "inputs-extra-name", "inputs-string",
        "signature-number", "signature-unknown", "mixed-b64-tensor",
        "mixed-bare-named", "mixed-names", "unknown-name", "bytes-tensor",
        "bad-base64", "not-an-image", "short-tensor", "ragged-tensor",
        "string-values", "bool-values", "overflow", "scalars"])
def test_invalid_predict_body_is_400(client, body):
    """Every malformed predict body is a 400 {"error": message}."""
    assert_tf_error(client.post(f"{BASE}:predict", json=body), 400)


@pytest.mark.parametrize("body", [
    {}, {"examples": {}}, {"examples": []}, {"examples": [1]},
    {"examples": [{"caption": "seaside"}]},
    {"examples": [{"image": "not b64 object"}]},
    {"examples": [{"image": CHELSEA_B64, "image_bytes": CHELSEA_B64}]},
    {"examples": [{"image": [CHELSEA_B64, CHELSEA_B64]}]},
    {"examples": [{"image": CHELSEA_B64, "x": [1, "a"]}]},
    {"examples": [{"image": CHELSEA_B64, "x": None}]},
    {"examples": [{"image": CHELSEA_B64, "x": [[1]]}]},
    {"examples": [{"image": CHELSEA_B64, "x": 2 ** 64}]},
    {"context": {"image": CHELSEA_B64},
     "examples": [{"image": CHELSEA_B64}]},
    {"context": [], "examples": [{"image": CHELSEA_B64}]},
    {"signature_name": "classify_objects",
     "examples": [{"image": CHELSEA_B64}]},
], ids=["no-examples", "examples-object", "examples-empty",
        "example-number", "no-image", "image-string", "two-images",
        "image-list-of-two", "mixed-kinds", "null-feature", "nested-list",
        "int64-overflow", "context-repeated", "context-list",
        "signature-unknown"])
def test_invalid_classify_body_is_400(client, body):
    """Every malformed classify body is a 400 {"error": message}."""
    assert_tf_error(client.post(f"{BASE}:classify", json=body), 400)


def test_batch_over_the_limit_is_413(tmp_path):
    """Batches over max_batch_size are refused before any decoding."""
    with RunningServer(make_settings(tmp_path, max_batch_size=2)) as running:
        with Client(running.url) as client:
            response = client.post(f"{BASE}:predict", json={
                "instances": [CHELSEA_B64] * 3})
            assert_tf_error(response, 413)
            response = client.post(f"{BASE}:classify", json={
                "examples": [{"image": CHELSEA_B64}] * 3})
            assert_tf_error(response, 413)


@pytest.fixture
def labelled_client(tmp_path):
    """Yield a client of a server with label "stable" on version 1.

    Version 3 failed to load.
    """
    versions = dict(shared_registry().versions)
    versions[3] = ModelVersion(3, None, FAILED, error="broken")
    registry = ModelRegistry(versions, 2)
    registry.set_serving(ServingConfig(labels={"stable": 1}))
    with RunningServer(make_settings(tmp_path), registry) as running:
        with Client(running.url) as client:
            yield client


def test_labels_address_their_version(labelled_client):
    """/labels/<label> serves the version the label names."""
    client = labelled_client
    status = client.get(f"{BASE}/labels/stable").json()
    assert [item["version"] for item in status["model_version_status"]] \
        == ["1"]
    metadata = client.get(f"{BASE}/labels/stable/metadata").json()
    assert metadata["model_spec"]["version"] == "1"
    response = client.post(f"{BASE}/labels/stable:classify", json={
        "examples": [{"image": CHELSEA_B64}]})
    assert response.status_code == 200, response.text
    assert response.json()["results"][0][0][0] == "Egyptian Mau"


def test_failed_version_status(labelled_client):
    """A version that failed to load is END with its error, not a 500."""
    status = labelled_client.get(f"{BASE}/versions/3").json()
    assert status == {"model_version_status": [{
        "version": "3", "state": "END",
        "status": {"error_code": "UNKNOWN", "error_message": "broken"}}]}
    response = labelled_client.post(f"{BASE}/versions/3:predict",
                                    json={"instances": [CHELSEA_B64]})
    assert_tf_error(response, 503)
