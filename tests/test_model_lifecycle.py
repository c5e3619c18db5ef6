"""Versions come and go while the service runs, and no request fails.

Each test serves its own repository folder, watched every 0.1 s, from a
real server built from settings; versions are copied in and removed with
``cp -r`` and ``rm -r``, as an operator would.
"""

import gc
import hashlib
import io
import json
import shutil
import subprocess
import threading
import time
import weakref

import pytest
from PIL import Image

from tests.conftest import (
    MODEL_REPOSITORY, Client, RunningServer, make_settings)
from tests.test_model_repository import copy_version

SOURCE = MODEL_REPOSITORY / "1"
WAIT = 30


def small_jpeg():
    """Return a small photo, so that predictions in a loop are quick."""
    buffer = io.BytesIO()
    with Image.open(MODEL_REPOSITORY.parent / "tests" / "data"
                    / "chelsea.jpg") as photo:
        photo.resize((112, 75)).save(buffer, "JPEG")
    return buffer.getvalue()


PHOTO = small_jpeg()


def predict(client, path="/predict/model", **headers):
    """Return the answer to one prediction of the small photo."""
    return client.post(path, data=PHOTO, headers={
        "Content-Type": "image/jpeg", **headers})


def wait_for(condition, timeout=WAIT):
    """Return once condition() is true; fail the test after timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def repository(tmp_path, *numbers):
    """Return a repository folder holding copies of version 1."""
    root = tmp_path / "repository"
    root.mkdir()
    for number in numbers:
        copy_version(SOURCE, root, number)
    return root


def serve(tmp_path, root, **overrides):
    """Return a server of ``root`` that looks at it every 0.1 s."""
    values = {"model_repository": root, "model_poll_seconds": 0.1,
              "interpreters": 1, "lone_request_threads": 0}
    values.update(overrides)
    return RunningServer(make_settings(tmp_path, **values), assembled=True)


def states(client):
    """Return ``{version: state}`` as GET /models shows it."""
    return {item["version"]: item["state"]
            for item in client.get("/models").json()["versions"]}


def test_version_added_and_removed_under_load_fails_nothing(tmp_path):
    """Copy a new version in, then remove it, while clients predict."""
    root = repository(tmp_path, 1)
    staged = copy_version(SOURCE, tmp_path / "staging", 2)
    served, stop, removed = [], threading.Event(), threading.Event()

    def keep_predicting(url):
        with Client(url) as client:
            while not stop.is_set():
                sent_after_removal = removed.is_set()
                response = predict(client)
                served.append((response.status_code,
                               response.headers.get("X-Model-Version"),
                               sent_after_removal))

    with serve(tmp_path, root) as running:
        threads = [threading.Thread(target=keep_predicting,
                                    args=(running.url,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: len(served) > 10)
            subprocess.run(["cp", "-r", str(staged), str(root / "2")],
                           check=True, timeout=WAIT)
            wait_for(lambda: ("2" in [version for _, version, _
                                      in served[-3:]]))
            pool = weakref.ref(running.parts.registry.versions[2].pool)
            subprocess.run(["rm", "-r", str(root / "2")], check=True,
                           timeout=WAIT)
            wait_for(lambda: 2 not in running.parts.registry.versions)
            removed.set()
            wait_for(lambda: sum(after for *_, after in served) > 20)
        finally:
            stop.set()
            for thread in threads:
                thread.join(WAIT)
    assert {status for status, *_ in served} == {200}
    assert {version for _, version, after in served if after} == {"1"}
    gc.collect()
    assert pool() is None, "the removed version's interpreters were kept"


def test_half_copied_version_is_not_served_until_complete(tmp_path):
    """A folder whose model file is still arriving never serves."""
    root = repository(tmp_path, 1)
    staged = copy_version(SOURCE, tmp_path / "staging", 3)
    data = (staged / "model.tflite").read_bytes()
    partial = root / "3"
    partial.mkdir()
    for name in ("model.json", "labels.txt"):
        shutil.copy(staged / name, partial / name)
    (partial / "model.tflite").write_bytes(data[:len(data) // 2])
    with serve(tmp_path, root, inference_wait_timeout=0.3) as running:
        with Client(running.url) as client:
            wait_for(lambda: 3 in states(client))
            for _ in range(10):
                assert states(client)[3] != "AVAILABLE"
                assert predict(client).headers["X-Model-Version"] == "1"
                response = predict(client, "/predict/model/v3")
                assert response.status_code == 503
                time.sleep(0.1)
            with open(partial / "model.tflite", "ab") as handle:
                handle.write(data[len(data) // 2:])
            wait_for(lambda: states(client)[3] == "AVAILABLE")
            response = predict(client, "/predict/model/v3")
            assert response.status_code == 200
            assert predict(client).headers["X-Model-Version"] == "3"


def test_failing_version_is_retried_and_never_served(tmp_path):
    """A model file that cannot load is tried again, with growing gaps."""
    root = repository(tmp_path, 1)
    broken = copy_version(SOURCE, tmp_path / "staging", 4)
    garbage = b"this is not a TFLite model" * 100
    (broken / "model.tflite").write_bytes(garbage)
    document = json.loads((broken / "model.json").read_text())
    document["sha256"] = hashlib.sha256(garbage).hexdigest()
    (broken / "model.json").write_text(json.dumps(document))
    shutil.copytree(broken, root / "4")
    with serve(tmp_path, root, inference_wait_timeout=0.3) as running:
        with Client(running.url) as client:
            def attempts():
                versions = client.get("/models").json()["versions"]
                return next((item.get("load_attempts", 0)
                             for item in versions if item["version"] == 4),
                            0)
            wait_for(lambda: attempts() >= 3)
            described = client.get("/models").json()
            assert described["default_version"] == 1
            assert states(client)[4] == "FAILED"
            assert predict(client).headers["X-Model-Version"] == "1"
            response = predict(client, "/predict/model/v4")
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "model_unavailable"
            # Backoff: tries get further apart, so few happen in a second.
            before = attempts()
            time.sleep(1.0)
            assert attempts() - before <= 2


def write_serving(root, document):
    """Write serving.json as an operator would, in one go."""
    (root / "serving.json").write_text(json.dumps(document))


def test_label_keeps_its_old_version_until_the_new_one_is_ready(tmp_path):
    """A label may name a loading version; the old one serves meanwhile."""
    root = repository(tmp_path, 1)
    write_serving(root, {"labels": {"stable": 1}})
    staged = copy_version(SOURCE, tmp_path / "staging", 5)
    with serve(tmp_path, root) as running, Client(running.url) as client:
        response = predict(client, "/predict/model/stable")
        assert response.json()["model"] == {
            "name": "efficientnet-lite0", "version": 1, "label": "stable"}
        partial = root / "5"
        partial.mkdir()
        shutil.copy(staged / "model.json", partial / "model.json")
        write_serving(root, {"labels": {"stable": 5}})
        wait_for(lambda: client.get("/models").json()["labels"] == {
            "stable": 5})
        for _ in range(5):
            response = predict(client, "/predict/model/stable")
            assert response.json()["model"]["version"] == 1
            time.sleep(0.1)
        for name in ("labels.txt", "model.tflite"):
            shutil.copy(staged / name, partial / name)
        wait_for(lambda: predict(client, "/predict/model/stable").json()[
            "model"]["version"] == 5)
        assert client.post("/predict/model/nolabel", data=PHOTO, headers={
            "Content-Type": "image/jpeg"}).status_code == 404


def test_traffic_split_follows_the_weights_and_sticks(tmp_path):
    """75/25 over 400 requests, and one key always gets one variant."""
    root = repository(tmp_path, 1, 2)
    write_serving(root, {"labels": {"stable": 1, "canary": 2},
                         "traffic": {"stable": 75, "canary": 25}})
    with serve(tmp_path, root) as running, Client(running.url) as client:
        labels = [predict(client).json()["model"]["label"]
                  for _ in range(400)]
        # 100 expected; 4.6 standard deviations either side.
        assert 60 <= labels.count("canary") <= 140
        assert labels.count("stable") + labels.count("canary") == 400
        by_key = {}
        for key in range(60):
            seen = {predict(client, **{"X-Variant-Key": f"user-{key}"})
                    .json()["model"]["label"] for _ in range(3)}
            assert len(seen) == 1, f"key {key} switched variants"
            by_key[key] = seen.pop()
        assert set(by_key.values()) == {"stable", "canary"}


@pytest.mark.parametrize("document", [
    {"labels": {"v2": 2}}, {"labels": {"7": 1}}, {"labels": {"x": "1"}},
    {"labels": {"a": 1}, "traffic": {"b": 5}},
    {"labels": {"a": 1}, "traffic": {"a": 0}}, {"label": {"a": 1}}])
def test_unusable_serving_file_keeps_the_labels_in_force(tmp_path, document):
    """A broken serving.json is reported and changes nothing."""
    root = repository(tmp_path, 1)
    write_serving(root, {"labels": {"stable": 1}})
    with serve(tmp_path, root) as running, Client(running.url) as client:
        write_serving(root, document)
        wait_for(lambda: "serving_error" in client.get("/models").json())
        assert client.get("/models").json()["labels"] == {"stable": 1}
        assert predict(client, "/predict/model/stable").status_code == 200


def test_prediction_log_records_sampled_predictions(tmp_path):
    """Each line says what was asked and answered, never the image."""
    path = tmp_path / "predictions.jsonl"
    settings = make_settings(tmp_path, prediction_log=path,
                             interpreters=1, lone_request_threads=0)
    with RunningServer(settings, assembled=True) as running:
        with Client(running.url) as client:
            for number in range(3):
                response = predict(client, "/predict/model/v1",
                                   **{"X-Request-ID": f"req-{number}"})
                assert response.status_code == 200
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == [
        "req-0", "req-1", "req-2"]
    first = lines[0]
    assert first["model"] == "efficientnet-lite0" and first["version"] == 1
    assert first["label"] is None
    assert first["input"] == {"sha256": hashlib.sha256(PHOTO).hexdigest(),
                              "bytes": len(PHOTO), "width": 112,
                              "height": 75}
    assert first["classes"][0]["index"] in range(281, 286)
    assert 0 < first["latency_seconds"] < WAIT
    assert PHOTO.hex()[:64] not in path.read_text()


def test_prediction_log_samples_and_rotates(tmp_path):
    """A sample of 0.5 keeps about half; files rotate at their size."""
    path = tmp_path / "predictions.jsonl"
    settings = make_settings(
        tmp_path, prediction_log=path, prediction_log_sample=0.5,
        prediction_log_max_bytes=4096, prediction_log_backups=2,
        interpreters=1, lone_request_threads=0)
    with RunningServer(settings, assembled=True) as running:
        with Client(running.url) as client:
            for _ in range(200):
                assert predict(client, "/predict/model/v1").ok
    files = sorted(tmp_path.glob("predictions.jsonl*"))
    assert [file.name for file in files] == [
        "predictions.jsonl", "predictions.jsonl.1", "predictions.jsonl.2"]
    assert all(file.stat().st_size <= 4096 for file in files)
    lines = sum(len(file.read_text().splitlines()) for file in files)
    # The kept files hold at most ~3 x 4096 bytes of ~500-byte lines.
    assert 0 < lines <= 200


def test_triton_repository_api_works_with_tritonclient(tmp_path, caplog):
    """Index, load and unload through Triton's own HTTP client."""
    import tritonclient.http as triton
    root = repository(tmp_path, 1)
    with serve(tmp_path, root, model_poll_seconds=0) as running:
        client = triton.InferenceServerClient(
            running.url.removeprefix("http://"))
        model = "efficientnet-lite0"

        def index():
            return [(entry["version"], entry["state"])
                    for entry in client.get_model_repository_index()]

        assert index() == [("1", "READY")]
        copy_version(SOURCE, root, 2)
        assert index() == [("1", "READY"), ("2", "UNAVAILABLE")]

        def load_with_own_client():
            # A tritonclient client is not shared between threads.
            triton.InferenceServerClient(
                running.url.removeprefix("http://")).load_model(model)

        with caplog.at_level("INFO", logger="app.models.loading"):
            loads = [threading.Thread(target=load_with_own_client)
                     for _ in range(2)]
            for thread in loads:
                thread.start()
            for thread in loads:
                thread.join(WAIT)
        assert index() == [("1", "READY"), ("2", "READY")]
        loaded = [record for record in caplog.records
                  if "version 2" in record.getMessage()]
        assert len(loaded) == 1, "two concurrent loads loaded twice"
        assert client.is_model_ready(model)
        client.unload_model(model)
        client.unload_model(model)  # idempotent
        assert index() == [("1", "UNAVAILABLE"), ("2", "UNAVAILABLE")]
        assert not client.is_model_ready(model)
        with Client(running.url) as http:
            assert predict(http).status_code in (404, 503)
            client.load_model(model)
            assert predict(http).headers["X-Model-Version"] == "2"
        assert client.is_model_ready(model)
        with pytest.raises(Exception, match="unknown model"):
            client.load_model("another-model")
