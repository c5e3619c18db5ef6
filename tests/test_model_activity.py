"""Background loading waits for a lull in the predictions, within bounds."""

import contextlib
import threading
import time

from app.models.activity import PredictionActivity
from app.models.bootstrap import load_registry
from app.models.loading import LoadOptions
from app.models.registry import AVAILABLE, LOADING
from tests.conftest import MODEL_REPOSITORY
from tests.test_model_repository import copy_version

QUIET = 0.1


@contextlib.contextmanager
def prediction_running(activity, release=None):
    """Count a prediction as running until ``release`` is set or the end.

    Yield the release event.
    """
    release = release or threading.Event()
    started = threading.Event()

    def predict():
        with activity.predicting():
            started.set()
            release.wait(30)

    thread = threading.Thread(target=predict, daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield release
    finally:
        release.set()
        thread.join(5)


def timed(function, *args):
    """Return ``(result, seconds)`` of one call."""
    began = time.monotonic()
    result = function(*args)
    return result, time.monotonic() - began


def test_lull_comes_once_nothing_has_run_for_the_quiet_time():
    """With no prediction at all, the lull starts QUIET after creation."""
    activity = PredictionActivity()
    lull, seconds = timed(activity.wait_for_lull, QUIET, 5.0)
    assert lull is True
    assert QUIET * 0.9 <= seconds < 2.0


def test_lull_waits_for_the_running_prediction_to_end():
    """A running prediction holds the loader until it ends, then QUIET."""
    activity = PredictionActivity()
    with prediction_running(activity) as release:
        threading.Timer(0.4, release.set).start()
        lull, seconds = timed(activity.wait_for_lull, QUIET, 5.0)
    assert lull is True
    assert seconds >= 0.4 + QUIET * 0.9


def test_longest_wait_bounds_the_loader_under_endless_load():
    """Predictions that never pause hold the loader for `longest` only."""
    activity = PredictionActivity()
    with prediction_running(activity):
        lull, seconds = timed(activity.wait_for_lull, QUIET, 0.3)
    assert lull is False
    assert 0.27 <= seconds < 2.0


def test_request_waiting_for_a_load_ends_the_wait_at_once():
    """A request waiting for a version makes the loader go, load or not."""
    activity = PredictionActivity()
    with prediction_running(activity) as release:

        def wait_for_load():
            with activity.waiting_for_load():
                release.wait(30)

        waiter = threading.Thread(target=wait_for_load, daemon=True)
        threading.Timer(0.2, waiter.start).start()
        lull, seconds = timed(activity.wait_for_lull, QUIET, 10.0)
    waiter.join(5)
    assert lull is False
    assert 0.15 <= seconds < 2.0


def test_closing_ends_the_wait():
    """A registry closing does not wait for the lull."""
    activity = PredictionActivity()
    closing = threading.Event()
    with prediction_running(activity):
        threading.Timer(0.2, closing.set).start()
        lull, seconds = timed(activity.wait_for_lull, QUIET, 10.0, closing)
    assert lull is False
    assert seconds < 2.0


def two_version_registry(tmp_path):
    """Return a registry of versions 1 and 2, version 2 loaded first."""
    for number in (1, 2):
        copy_version(MODEL_REPOSITORY / "1", tmp_path, number)
    return load_registry(tmp_path, options=LoadOptions(pool_size=1),
                         background=True)


def test_background_version_loads_only_once_predictions_pause(tmp_path):
    """Version 1 stays LOADING while a prediction runs, then loads."""
    registry = two_version_registry(tmp_path)
    try:
        with prediction_running(registry.activity):
            time.sleep(1.0)
            assert registry.versions[1].state == LOADING
        assert registry.wait_until_loaded(30)
        assert registry.versions[1].state == AVAILABLE
    finally:
        registry.close()


def test_request_for_a_loading_version_is_not_held_by_the_lull(tmp_path):
    """Asking for version 1 while predictions run loads it at once."""
    registry = two_version_registry(tmp_path)
    try:
        with prediction_running(registry.activity):
            version, seconds = timed(registry.get, 1)
        assert version.state == AVAILABLE
        # Far below the 10 s the loader would wait for a lull.
        assert seconds < 5.0
    finally:
        registry.close()
