"""Build the service's parts from settings: store, model registry, WSGI app.

This is the one place that maps settings onto the objects they configure,
so a test of :func:`build` proves the whole wiring, and everything below
it takes plain arguments.
"""

import dataclasses

from app.models.loading import Batching, LoadOptions, load_registry
from app.models.registry import ModelRegistry
from app.web.application import make_app
from app.words.store import WordStore


@dataclasses.dataclass
class Parts:
    """The WSGI app and the resources it serves, owned together."""

    settings: object
    store: WordStore
    registry: ModelRegistry
    wsgi: object

    def close(self):
        """Release the store and the registry once the server has stopped."""
        self.store.close()
        self.registry.close()


def build(settings):
    """Return every part of the service, configured by ``settings``.

    The default model version is loaded and warmed up here, before the
    server accepts a connection, so /health/ready is true from the first
    request; the other versions load in the background.
    """
    registry = build_registry(settings)
    try:
        store = build_store(settings)
    except BaseException:
        registry.close()
        raise
    return Parts(settings, store, registry,
                 make_app(settings, store, registry))


def load_options(settings):
    """Return how the registry makes interpreters, as settings say."""
    return LoadOptions(
        pool_size=settings.interpreters,
        num_threads=settings.interpreter_threads,
        lone_request_threads=settings.lone_request_threads,
        wait_timeout=settings.inference_wait_timeout,
        batching=Batching(settings.batching_max_size,
                          settings.batching_timeout_micros / 1e6,
                          settings.batching_threads))


def build_registry(settings, background=True):
    """Load the model repository that settings name."""
    return load_registry(settings.model_repository,
                         settings.default_model_version,
                         load_options(settings), background=background)


def build_store(settings):
    """Return the word store that ``settings.store`` names."""
    if settings.store == "redis":
        from app.words.redis_store import RedisWordStore
        return RedisWordStore(settings.redis_url, settings.redis_key_prefix,
                              settings.redis_timeout)
    from app.words.sqlite_store import SqliteWordStore
    return SqliteWordStore(settings.sqlite_path,
                           busy_timeout_ms=settings.sqlite_busy_timeout_ms)
