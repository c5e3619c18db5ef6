"""The Open Inference Protocol (KServe V2) as a Bottle sub-application."""

import bottle

from app.web.kserve.repository import RepositoryRoutes
from app.web.kserve.routes import KServeRoutes, error_body
from app.web.plugins import install_json_handling


def make_app(registry, settings, access=None, draining=None, limits=None):
    """Return the V2 application, to be mounted at /v2.

    Its errors are ``{"error": message, "code": code}``: the protocol's
    shape, which its clients parse, plus the service's error code.
    ``access`` checks keys and rate limits as on the other routes.
    """
    app = bottle.Bottle()
    install_json_handling(app, settings.max_body_bytes, render=error_body,
                          access=access)
    KServeRoutes(registry, settings, draining, limits).install(app)
    RepositoryRoutes(registry, settings.model_repository).install(app)
    return app
