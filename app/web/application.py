"""Assemble the WSGI application: plugins, error pages and the route table."""

import dataclasses

import bottle

from app.inference.decoding import configure_pillow
from app.inference.registry import Batching, ModelRegistry, load_registry
from app.web.docs import DocsRoutes
from app.web.health import HealthRoutes
from app.web.kserve import KServeRoutes
from app.web.plugins import ServiceErrorPlugin, install_error_pages
from app.web.predict import PredictRoutes
from app.web.words import WordRoutes
from app.words.store import WordStore, make_store


@dataclasses.dataclass
class Service:
    """The WSGI app together with the resources it owns."""

    wsgi: bottle.Bottle
    store: WordStore
    registry: ModelRegistry
    owns_registry: bool = True

    def close(self):
        """Release the resources once the server has stopped.

        A registry that was handed in is shared, so its owner closes it.
        """
        self.store.close()
        if self.owns_registry:
            self.registry.close()


def create_app(settings, store=None, registry=None):
    """Build the service from settings; given resources are used as is.

    The default model version is loaded and warmed up here, before the
    server accepts a connection, so /health/ready is true from the first
    request; the other versions load in the background.
    """
    configure_pillow(settings.max_image_pixels)
    owns_registry = registry is None
    if owns_registry:
        registry = load_registry(
            settings.model_repository, settings.default_model_version,
            pool_size=settings.interpreters or None,
            num_threads=settings.interpreter_threads,
            idle_threads=settings.idle_interpreter_threads or None,
            wait_timeout=settings.inference_wait_timeout,
            batching=Batching(settings.batching_max_size,
                              settings.batching_timeout_micros / 1e6,
                              settings.batching_threads),
            background=True)
    store = store if store is not None else make_store(settings)
    app = bottle.Bottle(catchall=True, autojson=True)
    app.install(ServiceErrorPlugin(settings.max_body_bytes))
    install_error_pages(app)
    WordRoutes(store, settings).install(app)
    PredictRoutes(registry, settings).install(app)
    KServeRoutes(registry, settings).install(app)
    HealthRoutes({"store": store.ping,
                  "model": registry.check_ready}).install(app)
    DocsRoutes().install(app)
    return Service(app, store, registry, owns_registry)
