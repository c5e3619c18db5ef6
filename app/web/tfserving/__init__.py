"""TensorFlow Serving's REST API as a Bottle sub-application."""

import bottle

from app.web.plugins import dumps, install_json_handling
from app.web.tfserving.routes import TFServingRoutes, malformed


def make_app(registry, settings, access=None, limits=None):
    """Return the TF Serving application, to be mounted at /v1.

    Its errors are ``{"error": message}``, TF Serving's shape. A path it
    does not serve is a 400 "Malformed request", as there; a known path
    with another method is a 405, since HTTP has a status for that.
    ``access`` checks keys and rate limits as on the other routes.
    """
    app = bottle.Bottle()
    install_json_handling(app, settings.max_body_bytes, render=error_body,
                          access=access)
    app.error(404)(_render_unknown_path)
    TFServingRoutes(registry, settings, limits).install(app)
    return app


def error_body(code, message):
    """Return TF Serving's error shape; it has no code of its own."""
    return {"error": message}


def _render_unknown_path(error):
    """Render a path no route matches as TF Serving's malformed request."""
    refused = malformed()
    bottle.response.status = refused.status
    bottle.response.content_type = "application/json"
    return dumps(error_body(refused.code, refused.message))
