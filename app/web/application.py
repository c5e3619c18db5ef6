"""Assemble the WSGI application: the service's routes and its protocols.

Each protocol with an error shape of its own (the Open Inference Protocol
under /v2) is a Bottle application of its own, with its own plugins and
error pages, and :class:`PrefixDispatcher` hands it every request under
its prefix. Bottle's ``mount`` does not fit: with a prefix ending in "/"
it merges the child's routes into the parent, so a path under the prefix
that matches no child route gets the parent's error page; without the
slash it forwards a path the parent has already decoded, and the child's
second decoding fails on any non-Latin-1 path with a 500.
"""

import bottle

from app.web import kserve
from app.web.docs import DocsRoutes
from app.web.health import HealthRoutes
from app.web.plugins import install_json_handling
from app.web.predict import PredictRoutes
from app.web.words import WordRoutes


def make_app(settings, store, registry):
    """Return the WSGI app serving the store and the model registry."""
    app = bottle.Bottle()
    install_json_handling(app, settings.max_body_bytes)
    WordRoutes(store, settings).install(app)
    PredictRoutes(registry, settings).install(app)
    HealthRoutes({"store": store.ping,
                  "model": registry.check_ready}).install(app)
    DocsRoutes().install(app)
    return PrefixDispatcher(app, {"/v2": kserve.make_app(registry, settings)})


class PrefixDispatcher:
    """Send each request to the app mounted at its path's prefix.

    A request for ``/v2`` or ``/v2/...`` goes to the app mounted at
    ``/v2`` with the prefix moved from ``PATH_INFO`` to ``SCRIPT_NAME``,
    as WSGI expects of a mounted app; every other request goes to the
    default app.
    """

    def __init__(self, default, mounts):
        """Take the default app and ``{prefix: app}``, prefixes without /."""
        self.default = default
        self.mounts = dict(mounts)

    def __call__(self, environ, start_response):
        """Serve one WSGI request."""
        path = environ.get("PATH_INFO", "")
        for prefix, app in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME",
                                                     "") + prefix
                environ["PATH_INFO"] = path[len(prefix):]
                return app(environ, start_response)
        return self.default(environ, start_response)
