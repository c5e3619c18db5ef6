"""The prediction and model routes over HTTP, with the shipped model."""

import base64
import io

import pytest
from PIL import Image

from tests.canary import Canary, send_body
from tests.conftest import DATA, Client, RunningServer, make_settings
from tests.test_words_api import assert_error

CAT_CLASSES = set(range(281, 286))  # tabby ... Egyptian Mau
EGYPTIAN_MAU = 285
CHELSEA_JPG = (DATA / "chelsea.jpg").read_bytes()
CHELSEA_PNG = (DATA / "chelsea.png").read_bytes()
ASTRONAUT_JPG = (DATA / "astronaut.jpg").read_bytes()


def classes_of(response, position=0):
    """Return the classes of one image of a successful prediction."""
    assert response.status_code == 200, response.text
    return response.json()["predictions"][position]["classes"]


def upload(client, path, *images, params=None):
    """POST images as multipart ``image`` fields."""
    files = [("image", (f"photo{number}.jpg", data, "image/jpeg"))
             for number, data in enumerate(images)]
    return client.post(path, files=files, params=params)


def test_multipart_photo_of_a_cat_gives_cat_classes(client):
    """The v1 model sees an Egyptian Mau, and only cats in its top 5."""
    response = upload(client, "/predict/model/v1", CHELSEA_JPG)
    body = response.json()
    assert body["model"] == {"name": "efficientnet-lite0", "version": 1}
    assert len(body["predictions"]) == 1
    classes = body["predictions"][0]["classes"]
    assert len(classes) == 5
    assert classes[0]["index"] == EGYPTIAN_MAU
    assert classes[0]["label"] == "Egyptian Mau"
    assert {item["index"] for item in classes[:3]} <= CAT_CLASSES
    scores = [item["score"] for item in classes]
    assert scores == sorted(scores, reverse=True)
    assert 0.5 < scores[0] <= 1.0


def test_probabilities_sum_to_one_over_all_classes(client):
    """With top_k = number of classes the scores are a distribution."""
    classes = classes_of(upload(client, "/predict/model/v1", CHELSEA_JPG,
                                params={"top_k": 1000}))
    assert len(classes) == 1000
    assert sorted(item["index"] for item in classes) == list(range(1000))
    assert sum(item["score"] for item in classes) == pytest.approx(1, 1e-3)


@pytest.mark.parametrize("photo", [CHELSEA_JPG, ASTRONAUT_JPG])
def test_versions_agree_on_top_1(client, photo):
    """The int8 weights of v2 keep the top-1 of the fp32 v1."""
    first = classes_of(upload(client, "/predict/model/v1", photo))
    second = classes_of(upload(client, "/predict/model/v2", photo))
    assert first[0]["index"] == second[0]["index"]
    assert first[0]["score"] != second[0]["score"]  # really two models


def test_default_route_serves_the_highest_version(client):
    """/predict/model uses version 3 unless settings say otherwise."""
    response = upload(client, "/predict/model", CHELSEA_JPG)
    assert response.json()["model"]["version"] == 3
    assert classes_of(response)[0]["index"] == EGYPTIAN_MAU


def test_default_version_comes_from_settings(tmp_path):
    """default_model_version picks the version /predict/model serves."""
    settings = make_settings(tmp_path, default_model_version=1)
    with RunningServer(settings, assembled=True) as running:
        with Client(running.url) as client:
            response = upload(client, "/predict/model", CHELSEA_JPG)
    assert response.json()["model"]["version"] == 1


def test_batch_equals_single_predictions(client):
    """Images sent together get exactly what each gets alone, in order."""
    batch = upload(client, "/predict/model/v1", CHELSEA_JPG, ASTRONAUT_JPG,
                   CHELSEA_JPG)
    singles = [classes_of(upload(client, "/predict/model/v1", photo))
               for photo in (CHELSEA_JPG, ASTRONAUT_JPG)]
    for position, expected in enumerate(singles + singles[:1]):
        got = classes_of(batch, position)
        assert [item["index"] for item in got] == [
            item["index"] for item in expected]
        assert [item["score"] for item in got] == pytest.approx(
            [item["score"] for item in expected], abs=1e-5)


@pytest.mark.parametrize("content_type,photo", [
    ("image/jpeg", CHELSEA_JPG), ("image/png", CHELSEA_PNG)])
def test_raw_image_body(client, content_type, photo):
    """A raw image body with its image/* type is one image."""
    response = client.post("/predict/model/v1", data=photo,
                           headers={"Content-Type": content_type})
    assert classes_of(response)[0]["index"] == EGYPTIAN_MAU


def test_json_base64_instances(client):
    """TF Serving's row format with b64 instances, standard and URL-safe."""
    instances = [{"b64": base64.b64encode(CHELSEA_JPG).decode()},
                 {"b64": base64.urlsafe_b64encode(ASTRONAUT_JPG).decode()}]
    response = client.post("/predict/model/v1",
                           json={"signature_name": "serving_default",
                                 "instances": instances})
    assert classes_of(response, 0)[0]["index"] == EGYPTIAN_MAU
    assert len(response.json()["predictions"]) == 2


def test_json_url_instance_from_allowed_local_server(tmp_path):
    """With private addresses allowed, a URL instance is fetched."""
    settings = make_settings(tmp_path, fetch_allow_private=True)
    canary = Canary("127.0.0.1")
    canary.routes["/cat.jpg"] = send_body(CHELSEA_JPG)
    try:
        with RunningServer(settings) as running:
            with Client(running.url) as client:
                response = client.post("/predict/model/v1", json={
                    "instances": [{"url": f"http://127.0.0.1:{canary.port}"
                                          "/cat.jpg"}]})
    finally:
        canary.close()
    assert classes_of(response)[0]["index"] == EGYPTIAN_MAU
    assert len(canary.requests) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f.1",
                                  "localhost"])
def test_private_url_is_refused_and_never_contacted(client, host):
    """By default a loopback URL is refused before any connection."""
    canary = Canary("127.0.0.1")
    try:
        response = client.post("/predict/model/v1", json={"instances": [
            {"url": f"http://{host}:{canary.port}/cat.jpg"}]})
    finally:
        canary.close()
    assert_error(response, 400, "url_not_allowed")
    assert canary.connections == 0 and canary.requests == []


def test_top_k(client):
    """top_k sets how many classes come back, within 1..classes."""
    assert len(classes_of(upload(client, "/predict/model/v1", CHELSEA_JPG,
                                 params={"top_k": 1}))) == 1
    for bad in ("0", "1001", "x", "-1", "2.5"):
        assert_error(upload(client, "/predict/model/v1", CHELSEA_JPG,
                            params={"top_k": bad}), 400, "invalid_top_k")


@pytest.mark.parametrize("path", ["/predict/model/v4", "/predict/model/v0",
                                  "/predict/model/v99999999"])
def test_unknown_version_is_404(client, path):
    """Versions that are not in the repository are a 404."""
    assert_error(upload(client, path, CHELSEA_JPG), 404,
                 "model_version_not_found")


def test_undecodable_image_is_400(client):
    """Bytes that are not an image are refused as invalid_image."""
    assert_error(upload(client, "/predict/model/v1", b"not an image"), 400,
                 "invalid_image")
    assert_error(upload(client, "/predict/model/v1", CHELSEA_JPG[:5000]),
                 400, "invalid_image")


def test_unsupported_types_are_415(client):
    """Other body types and image formats are refused with 415."""
    assert_error(client.post("/predict/model/v1", data=b"x",
                             headers={"Content-Type": "text/plain"}),
                 415, "unsupported_media_type")
    assert_error(client.post("/predict/model/v1", data=CHELSEA_JPG,
                             headers={"Content-Type": "image/tiff"}),
                 415, "unsupported_media_type")
    tiff = io.BytesIO()
    Image.open(io.BytesIO(CHELSEA_JPG)).save(tiff, "TIFF")
    assert_error(upload(client, "/predict/model/v1", tiff.getvalue()), 415,
                 "unsupported_image_format")


def test_mixed_case_multipart_boundary(client):
    """Browsers' boundaries (----WebKitFormBoundary...) are case-sensitive."""
    boundary = "----WebKitFormBoundaryAbCdEf012345"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
            f"filename=\"cat.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            ).encode() + CHELSEA_JPG + f"\r\n--{boundary}--\r\n".encode()
    response = client.post(
        "/predict/model/v1", data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert classes_of(response)[0]["index"] == EGYPTIAN_MAU


def test_missing_image_field_is_400(client):
    """A multipart form without an image field is refused."""
    response = client.post("/predict/model/v1",
                           files=[("photo", ("a.jpg", CHELSEA_JPG))])
    assert_error(response, 400, "missing_image")
    assert_error(client.post("/predict/model/v1", json={"instances": []}),
                 400, "missing_image")


@pytest.mark.parametrize("instances", [
    "x", [1], [{"b64": "AAAA", "url": "http://x/"}], [{"file": "x"}],
    [{"url": 5}]])
def test_malformed_instances_are_400(client, instances):
    """Instances that are not {b64} or {url} objects are refused."""
    response = client.post("/predict/model/v1",
                           json={"instances": instances})
    assert_error(response, 400, "invalid_instances")


def test_limits_are_413(tmp_path):
    """Too many bytes, pixels or images are refused with 413."""
    settings = make_settings(tmp_path, max_upload_bytes=200000,
                             max_image_bytes=50000, max_image_pixels=200000,
                             max_batch_size=2)
    big = io.BytesIO()
    Image.new("RGB", (500, 450)).save(big, "PNG")  # 225000 pixels, tiny
    with RunningServer(settings) as running, Client(running.url) as client:
        assert_error(upload(client, "/predict/model/v1", b"x" * 200001),
                     413, "body_too_large")
        assert_error(upload(client, "/predict/model/v1", ASTRONAUT_JPG),
                     413, "image_too_large")
        assert_error(upload(client, "/predict/model/v1", big.getvalue()),
                     413, "image_too_many_pixels")
        assert_error(upload(client, "/predict/model/v1", CHELSEA_JPG,
                            CHELSEA_JPG, CHELSEA_JPG),
                     413, "batch_too_large")
        assert classes_of(upload(client, "/predict/model/v1", CHELSEA_JPG))


def test_exif_rotation_keeps_the_top_1(client):
    """A photo stored sideways with an EXIF orientation tag is set upright."""
    upright = Image.open(io.BytesIO(CHELSEA_JPG))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    sideways = io.BytesIO()
    upright.rotate(90, expand=True).save(sideways, "JPEG", quality=90,
                                         exif=exif)
    rotated = classes_of(upload(client, "/predict/model/v1",
                                sideways.getvalue()))
    assert rotated[0]["index"] == EGYPTIAN_MAU


def test_models_metadata(client):
    """GET /models lists every version with its state and model.json."""
    body = client.get("/models").json()
    assert body["name"] == "efficientnet-lite0"
    assert body["default_version"] == 3
    assert [item["version"] for item in body["versions"]] == [1, 2, 3]
    assert {item["state"] for item in body["versions"]} == {"AVAILABLE"}
    one = client.get("/models/v1").json()
    assert one["metadata"]["input"]["shape"] == [1, 224, 224, 3]
    assert one == body["versions"][0]
    assert_error(client.get("/models/v7"), 404, "model_version_not_found")


def test_ready_reports_the_model(client):
    """Readiness includes the model check."""
    assert client.get("/health/ready").json()["checks"] == {
        "store": "ok", "model": "ok"}


def test_file_field_is_taken_like_image(client):
    """A multipart field named file, as many forms name it, also works."""
    response = client.post("/predict/model/v1", files=[
        ("file", ("cat.jpg", CHELSEA_JPG, "image/jpeg"))])
    assert classes_of(response)[0]["index"] == EGYPTIAN_MAU


def test_wrong_field_name_is_told_the_right_one(client):
    """A multipart upload under another name is told to use "image"."""
    response = client.post("/predict/model/v1", files=[
        ("photo", ("cat.jpg", CHELSEA_JPG, "image/jpeg"))])
    assert_error(response, 400, "missing_image")
    assert '"image"' in response.json()["error"]["message"]
