"""Cross-cutting HTTP concerns: body limits and JSON errors on every route."""

import json
import logging

import bottle

from app.errors import ServiceError
from app.web.bodies import read_bounded_body

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request", 404: "not_found", 405: "method_not_allowed",
    413: "payload_too_large", 500: "internal_error",
}
_MESSAGES = {
    404: "no route matches {method} {path}",
    405: "{method} is not allowed on {path}",
    500: "the server failed to handle the request",
}


def error_body(code, message):
    """Return the JSON error body in the shape the request's path calls for.

    The Open Inference Protocol (KServe V2) routes under /v2 answer
    ``{"error": message}``, which its clients parse; all others answer
    ``{"error": {"code": ..., "message": ...}}``.
    """
    path = bottle.request.path
    if path == "/v2" or path.startswith("/v2/"):
        return {"error": message}
    return {"error": {"code": code, "message": message}}


def json_response(status, body, headers=None):
    """Return an HTTPResponse carrying body as JSON."""
    response = bottle.HTTPResponse(
        json.dumps(body), status, headers or {})
    response.content_type = "application/json"
    return response


class ServiceErrorPlugin:
    """Read the body within the route's limit and render ServiceErrors."""

    name = "service_errors"
    api = 2

    def __init__(self, default_body_limit):
        """Use default_body_limit where a route sets no ``body_limit``."""
        self.default_body_limit = default_body_limit

    def apply(self, callback, route):
        """Wrap one route's handler."""
        limit = route.config.get("body_limit", self.default_body_limit)

        def wrapper(*args, **kwargs):
            try:
                read_bounded_body(bottle.request.environ, limit)
                return callback(*args, **kwargs)
            except ServiceError as error:
                return json_response(error.status,
                                     error_body(error.code, error.message))
        return wrapper


def render_http_error(error):
    """Render Bottle's own errors (404, 405, 500, ...) as JSON."""
    status = error.status_code
    if status >= 500:
        log.error("unhandled error on %s %s: %s", bottle.request.method,
                  bottle.request.path, error.traceback or error.exception)
    template = _MESSAGES.get(status)
    message = template.format(method=bottle.request.method,
                              path=bottle.request.path) if template else (
        error.body if isinstance(error.body, str) and error.body
        else error.status_line)
    bottle.response.content_type = "application/json"
    return json.dumps(error_body(_CODES.get(status, f"http_{status}"),
                                 message))


def install_error_pages(app):
    """Make every error page of the app JSON, whichever status it has."""
    app.default_error_handler = render_http_error
