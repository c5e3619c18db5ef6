"""Build the service's parts from settings: store, model registry, WSGI app.

This is the one place that maps settings onto the objects they configure,
so a test of :func:`build` proves the whole wiring, and everything below
it takes plain arguments.
"""

import concurrent.futures
import dataclasses
import threading

from app.models.bootstrap import load_registry
from app.models.loading import Batching, LoadOptions
from app.models.registry import ModelRegistry
from app.ops.keys import KeyFile
from app.ops.metrics import ServiceMetrics
from app.ops.prediction_log import PredictionLog
from app.web.application import make_app
from app.words.store import WordStore


@dataclasses.dataclass
class Parts:
    """The WSGI app and the resources it serves, owned together."""

    settings: object
    store: WordStore
    registry: ModelRegistry
    wsgi: object
    prediction_log: PredictionLog | None = None
    metrics: ServiceMetrics = None
    #: Set when the service stops taking new work (SIGTERM): readiness
    #: then answers 503 while requests are still served.
    draining: threading.Event = dataclasses.field(
        default_factory=threading.Event)

    def close(self):
        """Release every part once the server has stopped."""
        self.store.close()
        self.registry.close()
        if self.prediction_log is not None:
            self.prediction_log.close()


def build(settings):
    """Return every part of the service, configured by ``settings``.

    The default model version is loaded and warmed up here, before the
    server accepts a connection, so /health/ready is true from the first
    request; the other versions load in the background. The word store
    opens meanwhile, in a thread of its own: opening it waits on the
    disk (a new SQLite file is synced) or the network (Redis), not on
    the CPU the model needs.
    """
    metrics = ServiceMetrics()
    keys = build_keys(settings)
    with concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="store-opener") as opener:
        opening = opener.submit(build_store, settings)
        try:
            registry = build_registry(settings,
                                      observer=metrics.observe_inference)
        except BaseException:
            _close_once_open(opening)
            raise
        try:
            store = opening.result()
        except BaseException:
            registry.close()
            raise
    prediction_log = build_prediction_log(
        settings, on_drop=metrics.prediction_log_dropped.inc)
    draining = threading.Event()
    wsgi = make_app(settings, store, registry, metrics=metrics, keys=keys,
                    prediction_log=prediction_log, draining=draining)
    return Parts(settings, store, registry, wsgi, prediction_log, metrics,
                 draining)


def _close_once_open(opening):
    """Close the store a future opens, once it has; ignore its failure."""
    try:
        store = opening.result()
    except Exception:
        return
    store.close()


def build_keys(settings):
    """Return the API keys of the key file settings name, or None (open)."""
    if settings.api_keys_file is None:
        return None
    return KeyFile(settings.api_keys_file)


def build_prediction_log(settings, on_drop=None):
    """Return the prediction log settings ask for, or None when it is off."""
    if settings.prediction_log is None:
        return None
    return PredictionLog(
        settings.prediction_log, settings.prediction_log_sample,
        settings.prediction_log_max_bytes, settings.prediction_log_backups,
        settings.prediction_log_queue, on_drop)


def load_options(settings, observer=None):
    """Return how the registry makes interpreters, as settings say."""
    return LoadOptions(
        observer=observer,
        pool_size=settings.interpreters,
        num_threads=settings.interpreter_threads,
        lone_request_threads=settings.lone_request_threads,
        wait_timeout=settings.inference_wait_timeout,
        batching=Batching(settings.batching_max_size,
                          settings.batching_timeout_micros / 1e6,
                          settings.batching_threads))


def build_registry(settings, background=True, observer=None):
    """Load the model repository that settings name."""
    return load_registry(settings.model_repository,
                         settings.default_model_version,
                         load_options(settings, observer),
                         background=background,
                         poll_seconds=settings.model_poll_seconds)


def build_store(settings):
    """Return the word store that ``settings.store`` names."""
    if settings.store == "redis":
        from app.words.redis_store import RedisWordStore
        return RedisWordStore(settings.redis_url, settings.redis_key_prefix,
                              settings.redis_timeout)
    from app.words.sqlite_store import SqliteWordStore
    return SqliteWordStore(settings.sqlite_path,
                           busy_timeout_ms=settings.sqlite_busy_timeout_ms)
