"""Assemble the WSGI application: plugins, error pages and the route table."""

import dataclasses

import bottle

from app.web.health import HealthRoutes
from app.web.plugins import ServiceErrorPlugin, install_error_pages
from app.web.words import WordRoutes
from app.words.store import make_store


@dataclasses.dataclass
class Service:
    """The WSGI app together with the resources it owns."""

    wsgi: bottle.Bottle
    store: object

    def close(self):
        """Release the resources once the server has stopped."""
        self.store.close()


def create_app(settings, store=None):
    """Build the service from settings; a given store is used as is."""
    store = store if store is not None else make_store(settings)
    app = bottle.Bottle(catchall=True, autojson=True)
    app.install(ServiceErrorPlugin(settings.max_body_bytes))
    install_error_pages(app)
    WordRoutes(store, settings).install(app)
    HealthRoutes({"store": store.ping}).install(app)
    return Service(wsgi=app, store=store)
