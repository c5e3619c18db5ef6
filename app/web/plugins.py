"""Bottle plugins and error pages shared by the app and its sub-apps.

Each plugin has one job: :class:`BodyLimitPlugin` reads the request body
within the route's limit, :class:`ServiceErrorPlugin` renders domain
errors as JSON. Bottle gives a mounted sub-application none of its
parent's plugins, so :func:`install_json_handling` installs them all on
each application with the error shape of its protocol, together with the
headers every response carries.
"""

import functools
import json
import logging

import bottle

from app.errors import ServiceError
from app.web.bodies import read_bounded_body

log = logging.getLogger(__name__)

BODY_LIMIT_KEY = "body_limit.max_bytes"
ERROR_CODE_KEY = "app.error_code"
_CODES = {
    400: "bad_request", 404: "not_found", 405: "method_not_allowed",
    413: "payload_too_large", 500: "internal_error",
}
_MESSAGES = {
    404: "no route matches {method} {path}",
    405: "{method} is not allowed on {path}",
    500: "the server failed to handle the request",
}


def dumps(value):
    """Return value as JSON text ending in a newline, as a terminal wants."""
    return json.dumps(value) + "\n"


def service_error_body(code, message):
    """Return the service's own error shape."""
    return {"error": {"code": code, "message": message}}


def json_response(status, body, headers=None):
    """Return an HTTPResponse carrying body as JSON."""
    response = bottle.HTTPResponse(dumps(body), status, headers or {})
    response.content_type = "application/json"
    return response


def body_limit(max_bytes):
    """Return the route option that sets the route's body limit."""
    return {BODY_LIMIT_KEY: max_bytes}


class BodyLimitPlugin:
    """Read each request body within its route's limit before the handler.

    A route sets its limit with ``**body_limit(n)``; others get the
    plugin's default.
    """

    name = "body_limit"
    api = 2

    def __init__(self, default_max_bytes):
        """Use default_max_bytes where a route sets no limit."""
        self.default_max_bytes = default_max_bytes

    def apply(self, callback, route):
        """Wrap one route's handler."""
        limit = route.config.get(BODY_LIMIT_KEY, self.default_max_bytes)

        @functools.wraps(callback)
        def read_body_then_handle(*args, **kwargs):
            read_bounded_body(bottle.request.environ, limit)
            return callback(*args, **kwargs)
        return read_body_then_handle


class ServiceErrorPlugin:
    """Render every ServiceError a handler raises as a JSON error."""

    name = "service_errors"
    api = 2

    def __init__(self, render=service_error_body):
        """Take ``render(code, message) -> dict``, the protocol's shape."""
        self.render = render

    def apply(self, callback, route):
        """Wrap one route's handler."""
        @functools.wraps(callback)
        def handle_service_errors(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except ServiceError as error:
                # The access log names the error of a request.
                bottle.request.environ[ERROR_CODE_KEY] = error.code
                return json_response(
                    error.status, self.render(error.code, error.message),
                    error.headers)
        return handle_service_errors


def install_json_handling(app, default_max_bytes,
                          render=service_error_body, access=None):
    """Give an app JSON bodies, body limits and JSON errors of one shape.

    Plugins installed first wrap the outside, so errors raised while the
    body is read, or by ``access`` (the API key and rate limit checks,
    before the body is read), are rendered too; Bottle's own errors
    (404, 405, an unhandled exception) go through the error page in the
    same shape. The headers every response carries come from the
    middleware around all the applications (:mod:`app.web.operations`).
    """
    app.uninstall("json")
    app.install(bottle.JSONPlugin(json_dumps=dumps))
    app.install(ServiceErrorPlugin(render))
    if access is not None:
        app.install(access)
    app.install(BodyLimitPlugin(default_max_bytes))
    app.default_error_handler = functools.partial(
        render_http_error, render=render)


def render_http_error(error, render=service_error_body):
    """Render Bottle's own errors (404, 405, 500, ...) as JSON."""
    status = error.status_code
    if status >= 500:
        log.error("unhandled error on %s %s: %s", bottle.request.method,
                  bottle.request.fullpath, error.traceback or error.exception)
    template = _MESSAGES.get(status)
    message = template.format(method=bottle.request.method,
                              path=bottle.request.fullpath) if template else (
        error.body if isinstance(error.body, str) and error.body
        else error.status_line)
    code = _CODES.get(status, f"http_{status}")
    bottle.request.environ[ERROR_CODE_KEY] = code
    bottle.response.content_type = "application/json"
    return dumps(render(code, message))
