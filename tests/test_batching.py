"""Dynamic batching: requests that arrive together share one invoke."""

import concurrent.futures

import numpy as np
import pytest

from app.errors import Unavailable
from app.inference.batching import DynamicBatcher
from app.inference.pipeline import ImageLimits, prepare_image
from app.inference.runtime import InterpreterPool
from tests.conftest import (
    DATA, MODEL_REPOSITORY, Client, RunningServer, make_settings)
from tests.test_predict_api import CHELSEA_JPG, upload

PHOTOS = [DATA / "chelsea.jpg", DATA / "astronaut.jpg", DATA / "chelsea.png"]
LIMITS = ImageLimits(10 * 2 ** 20, 40_000_000)


@pytest.fixture(scope="module")
def pool():
    """Return a pool of one interpreter of version 1."""
    return InterpreterPool(MODEL_REPOSITORY / "1" / "model.tflite", 1, 1, 10)


@pytest.fixture(scope="module")
def tensors():
    """Return the pre-processed test photos, one (1, H, W, 3) each."""
    import json
    spec = json.loads((MODEL_REPOSITORY / "1" / "model.json").read_text())
    return [prepare_image(path.read_bytes(), spec["input"], LIMITS)[None]
            for path in PHOTOS]


def test_batched_results_equal_unbatched(pool, tensors):
    """Rows of a stacked invoke are the single invokes' outputs."""
    expected = [pool.run(tensor) for tensor in tensors]
    batcher = DynamicBatcher(pool, 8, 0.2, 1, 10)
    try:
        with concurrent.futures.ThreadPoolExecutor(len(tensors)) as threads:
            got = list(threads.map(batcher.run, tensors))
    finally:
        batcher.close()
    for single, batched in zip(expected, got):
        np.testing.assert_allclose(batched, single, atol=1e-6)
    # Three jobs within a 200 ms window: fewer invokes than jobs.
    assert batcher.batches_run < len(tensors)


def test_batches_never_exceed_the_maximum(pool, tensors):
    """A job that would overflow a batch waits for the next one."""
    batcher = DynamicBatcher(pool, 2, 0.2, 1, 10)
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as threads:
            outputs = list(threads.map(batcher.run, tensors))
    finally:
        batcher.close()
    assert [output.shape for output in outputs] == [(1, 1000)] * 3
    assert batcher.batches_run == 2


def test_a_failing_batch_fails_its_requests_only(pool, tensors):
    """An invoke error reaches every waiting request; later ones work."""
    batcher = DynamicBatcher(pool, 4, 0.01, 1, 10)
    try:
        with pytest.raises(ValueError):
            batcher.run(np.zeros((1, 3, 3, 3), np.float32))
        assert batcher.run(tensors[0]).shape == (1, 1000)
    finally:
        batcher.close()


def test_wait_is_bounded(pool, tensors):
    """A request waits at most wait_timeout for its batch."""
    batcher = DynamicBatcher(pool, 4, 0.0, 1, 0.05)
    try:
        with pool.borrow():
            with pytest.raises(Unavailable):
                batcher.run(tensors[0])
    finally:
        batcher.close()


def test_server_with_batching_answers_like_without(tmp_path):
    """Turned on in settings, batching changes no prediction."""
    # Version 1 as the default: it is loaded before the server listens,
    # so the requests do not also wait for its background load.
    settings = make_settings(tmp_path, batching_max_size=8,
                             batching_timeout_micros=5000, interpreters=1,
                             default_model_version=1)
    with RunningServer(settings, assembled=True) as running:
        def predict(_):
            with Client(running.url) as client:
                return upload(client, "/predict/model/v1", CHELSEA_JPG)
        with concurrent.futures.ThreadPoolExecutor(6) as threads:
            responses = list(threads.map(predict, range(6)))
        registry = running.parts.registry
    classes = [response.json()["predictions"][0]["classes"]
               for response in responses]
    assert all(items[0]["index"] == 285 for items in classes)
    assert all(items == classes[0] for items in classes)
    assert registry.get(1).batcher.batches_run >= 1
