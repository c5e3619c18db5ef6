"""The V2 routes as Triton's and KServe's own Python clients use them.

Each client runs with its defaults unless a test says otherwise: both
send tensors as binary data after the JSON, and Triton's client asks for
binary outputs too. The input is chelsea.jpg, either as its JPEG bytes
or pre-processed here with Pillow and NumPy as model.json describes it,
and the answer is checked against what POST /predict/model/v1 says.
"""

import asyncio
import base64

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from PIL import Image
from tritonclient.utils import InferenceServerException

from tests.conftest import DATA, Client

MODEL = "efficientnet-lite0"
EGYPTIAN_MAU = 285
CHELSEA = DATA / "chelsea.jpg"
OUTPUT = "probabilities"


def chelsea_pixels():
    """Return chelsea as RGB resized to 224x224 bilinearly (model.json)."""
    with Image.open(CHELSEA) as image:
        pixels = image.convert("RGB").resize((224, 224),
                                             Image.Resampling.BILINEAR)
    return np.asarray(pixels)[np.newaxis]


def chelsea_tensor():
    """Return chelsea as versions 1 and 2 take it: FP32 (x - 127) / 128."""
    return (chelsea_pixels().astype(np.float32) - 127.0) / 128.0


def chelsea_int8():
    """Return chelsea as the full-integer version 3 takes it: x - 128."""
    return (chelsea_pixels().astype(np.int16) - 128).astype(np.int8)


@pytest.fixture
def triton_client(server):
    """Yield Triton's HTTP client of the test's server."""
    client = triton.InferenceServerClient(server.url.split("://", 1)[1])
    yield client
    client.close()


@pytest.fixture
def expected_top_1(client):
    """Return the top-1 class POST /predict/model/v1 gives chelsea."""
    response = client.post(
        "/predict/model/v1",
        files=[("image", ("chelsea.jpg", CHELSEA.read_bytes(),
                          "image/jpeg"))])
    assert response.status_code == 200, response.text
    index = response.json()["predictions"][0]["classes"][0]["index"]
    assert index == EGYPTIAN_MAU
    return index


def fp32_input(binary_data=True):
    """Return Triton's FP32 input holding the pre-processed photo."""
    tensor = triton.InferInput("image", [1, 224, 224, 3], "FP32")
    tensor.set_data_from_numpy(chelsea_tensor(), binary_data=binary_data)
    return tensor


def jpeg_input(binary_data=True):
    """Return Triton's BYTES input holding the JPEG file.

    JSON has no bytes: without binary data the element is its base64.
    """
    tensor = triton.InferInput("images", [1], "BYTES")
    data = CHELSEA.read_bytes()
    if not binary_data:
        data = base64.b64encode(data)
    tensor.set_data_from_numpy(np.array([data], dtype=np.object_),
                               binary_data=binary_data)
    return tensor


def test_server_metadata_and_health(triton_client):
    """The client sees a live, ready server with the binary extension."""
    assert triton_client.is_server_live()
    assert triton_client.is_server_ready()
    assert triton_client.is_model_ready(MODEL)
    assert triton_client.is_model_ready(MODEL, "1")
    assert "binary_tensor_data" in (
        triton_client.get_server_metadata()["extensions"])
    metadata = triton_client.get_model_metadata(MODEL, "1")
    assert metadata["inputs"] == [
        {"name": "image", "datatype": "FP32", "shape": [-1, 224, 224, 3]}]


@pytest.mark.parametrize("binary_in, binary_out", [
    (True, True), (True, False), (False, True), (False, False)],
    ids=["binary-in-binary-out", "binary-in-json-out",
         "json-in-binary-out", "json-in-json-out"])
@pytest.mark.parametrize("make_input", [fp32_input, jpeg_input],
                         ids=["fp32", "jpeg"])
def test_infer_in_every_mode(triton_client, expected_top_1, make_input,
                             binary_in, binary_out):
    """Binary or JSON both ways give one [1, 1000] distribution."""
    result = triton_client.infer(
        MODEL, [make_input(binary_in)], model_version="1",
        outputs=[triton.InferRequestedOutput(OUTPUT,
                                             binary_data=binary_out)])
    output = result.get_output(OUTPUT)
    assert ("binary_data_size" in output.get("parameters", {})) == binary_out
    probabilities = result.as_numpy(OUTPUT)
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (1, 1000)
    assert abs(float(probabilities.sum()) - 1) < 1e-3
    assert int(probabilities[0].argmax()) == expected_top_1


def test_defaults_ask_for_binary_outputs(triton_client, expected_top_1):
    """With no outputs named, the client asks for every output as binary."""
    result = triton_client.infer(MODEL, [fp32_input()], "1")
    response = result.get_response()
    assert response["model_version"] == "1"
    assert response["outputs"][0]["parameters"]["binary_data_size"] == 4000
    assert int(result.as_numpy(OUTPUT)[0].argmax()) == expected_top_1


def test_binary_and_json_inputs_give_the_same_output(triton_client):
    """The same tensor sent both ways gives the same probabilities."""
    binary = triton_client.infer(MODEL, [fp32_input(True)], "1")
    json = triton_client.infer(MODEL, [fp32_input(False)], "1")
    np.testing.assert_array_equal(binary.as_numpy(OUTPUT),
                                  json.as_numpy(OUTPUT))


def test_batch_of_two_binary_images(triton_client, expected_top_1):
    """Two JPEG elements, each length-prefixed, give two rows."""
    tensor = triton.InferInput("images", [2], "BYTES")
    photos = [CHELSEA.read_bytes(), (DATA / "astronaut.jpg").read_bytes()]
    tensor.set_data_from_numpy(np.array(photos, dtype=np.object_))
    probabilities = triton_client.infer(MODEL, [tensor], "1").as_numpy(
        OUTPUT)
    assert probabilities.shape == (2, 1000)
    assert int(probabilities[0].argmax()) == expected_top_1
    assert int(probabilities[1].argmax()) != expected_top_1


@pytest.mark.parametrize("binary_out", [True, False], ids=["binary", "json"])
def test_classification_extension(triton_client, client, binary_out):
    """class_count=3 returns BYTES "score:index:label", best first."""
    output = triton.InferRequestedOutput(OUTPUT, binary_data=binary_out,
                                         class_count=3)
    result = triton_client.infer(MODEL, [jpeg_input()], "1",
                                 outputs=[output])
    classes = result.as_numpy(OUTPUT)
    assert classes.shape == (1, 3)
    expected = client.post(
        "/predict/model/v1", params={"top_k": 3},
        files=[("image", ("chelsea.jpg", CHELSEA.read_bytes(),
                          "image/jpeg"))]).json()["predictions"][0]["classes"]
    for element, item in zip(classes[0], expected):
        text = element.decode() if isinstance(element, bytes) else element
        score, index, label = text.split(":", 2)
        assert (int(index), label) == (item["index"], item["label"])
        assert abs(float(score) - item["score"]) < 1e-5


def test_errors_reach_the_client_as_messages(triton_client):
    """A refused request raises the client's exception with the message."""
    with pytest.raises(InferenceServerException) as raised:
        triton_client.infer("resnet50", [fp32_input()])
    assert raised.value.status() == "404"
    assert "resnet50" in raised.value.message()
    tensor = triton.InferInput("image", [1, 224, 224], "FP32")
    tensor.set_data_from_numpy(chelsea_tensor()[..., 0])
    with pytest.raises(InferenceServerException) as raised:
        triton_client.infer(MODEL, [tensor])
    assert raised.value.status() == "400"


def kserve_request(binary_data, datatype="INT8"):
    """Return the KServe SDK's request for chelsea, JSON or binary.

    The SDK names no version, so the default one, 3, answers: its input
    is INT8.
    """
    if datatype == "INT8":
        tensor = InferInput("image", [1, 224, 224, 3], "INT8")
        tensor.set_data_from_numpy(chelsea_int8(), binary_data=binary_data)
    else:
        tensor = InferInput("images", [1], "BYTES")
        tensor.set_data_from_numpy(
            np.array([CHELSEA.read_bytes()], dtype=np.object_),
            binary_data=binary_data)
    return InferRequest(model_name=MODEL, infer_inputs=[tensor])


def run_kserve(server_url, work):
    """Run ``await work(client, url)`` with the SDK's V2 REST client."""
    async def main():
        async with InferenceRESTClient(RESTConfig(protocol="v2")) as sdk:
            return await work(sdk, server_url)
    return asyncio.run(main())


@pytest.mark.parametrize("binary_data, datatype", [
    (False, "INT8"), (True, "INT8"), (True, "BYTES")],
    ids=["json-int8", "binary-int8", "binary-jpeg"])
def test_kserve_sdk_infers(server, expected_top_1, binary_data, datatype):
    """The SDK's requests, model_name included, are answered."""
    async def work(sdk, url):
        return await sdk.infer(url, kserve_request(binary_data, datatype),
                               model_name=MODEL)
    response = run_kserve(server.url, work)
    assert response.model_name == MODEL
    probabilities = response.outputs[0].as_numpy()
    assert probabilities.shape == (1, 1000)
    assert int(probabilities[0].argmax()) == expected_top_1


def test_kserve_sdk_health(server):
    """The SDK sees the server live and ready, and the model ready."""
    async def work(sdk, url):
        return (await sdk.is_server_live(url), await sdk.is_server_ready(url),
                await sdk.is_model_ready(url, MODEL),
                await sdk.is_model_ready(url, "resnet50"))
    assert run_kserve(server.url, work) == (True, True, True, False)


def test_kserve_sdk_model_name_must_match_the_url(server):
    """A body naming another model than the URL is refused with a 400."""
    async def work(sdk, url):
        request = kserve_request(False)
        request.model_name = "resnet50"
        return await sdk.infer(url, request, model_name=MODEL)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        run_kserve(server.url, work)
    assert raised.value.response.status_code == 400
    assert "model_name" in str(raised.value)


def test_kserve_sdk_json_request_as_sent(server):
    """The SDK's JSON body names its model; the same body over requests."""
    request = kserve_request(False)
    body, json_length = request.to_rest()
    assert json_length is None and body["model_name"] == MODEL
    with Client(server.url) as client:
        response = client.post(f"/v2/models/{MODEL}/infer", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == body["id"]
