"""WSGI middleware around the whole service: ids, CORS, metrics, access log.

It sees every request, whichever application answers it (the service,
the /v2 and /v1 protocols) and whatever the outcome (a 404 no route
matched included), so the request id, the CORS headers, the request
metrics and the access line are the same for all of them, and so is the
``nosniff`` every answer carries.
"""

import time

from app.ops.request_log import REQUEST_ID, log_access, request_id_from
from app.web.access import KEY_NAME
from app.web.plugins import ERROR_CODE_KEY

ROUTE_KEY = "bottle.route"
SERVED_KEY = "app.served"
_PREFLIGHT_HEADERS = ("Authorization, Content-Type, X-API-Key, "
                      "X-Request-ID, X-Variant-Key, "
                      "Inference-Header-Content-Length")
_EXPOSED_HEADERS = ("X-Request-ID, X-Model-Version, Retry-After, RateLimit, "
                    "RateLimit-Policy, Inference-Header-Content-Length")
_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
# A browser that sniffs a JSON body (an error echoing the request, say)
# could run it as HTML or script; nosniff makes it keep the declared type.
_NOSNIFF = ("X-Content-Type-Options", "nosniff")


class Cors:
    """Which browser origins may call the API; ``*`` allows every one."""

    def __init__(self, origins):
        """Take the allowed origins (empty: CORS stays off)."""
        self.origins = frozenset(origins)

    def allowed(self, origin):
        """Return the Allow-Origin value for ``origin``, or None."""
        if not origin or not self.origins:
            return None
        if "*" in self.origins:
            return "*"
        return origin if origin in self.origins else None


class OperationsMiddleware:
    """Give each request an id, CORS headers, metrics and an access line."""

    def __init__(self, app, metrics, cors=Cors(()), client_address=None):
        """Wrap the WSGI ``app``; record into ``metrics``.

        ``client_address(environ)`` names the caller in the access log
        (None: the peer's address).
        """
        self.app = app
        self.metrics = metrics
        self.cors = cors
        self.client_address = client_address

    def __call__(self, environ, start_response):
        """Serve one request and account for it."""
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        token = REQUEST_ID.set(request_id)
        origin = self.cors.allowed(environ.get("HTTP_ORIGIN"))
        extra = [("X-Request-ID", request_id), _NOSNIFF]
        if origin is not None:
            extra += [("Access-Control-Allow-Origin", origin),
                      ("Access-Control-Expose-Headers", _EXPOSED_HEADERS)]
            if origin != "*":
                extra.append(("Vary", "Origin"))
        status = []

        def start(line, headers, exc_info=None):
            status[:] = [line]
            return start_response(line, [*headers, *extra], exc_info)

        self.metrics.in_flight.inc()
        try:
            if (origin is not None and environ["REQUEST_METHOD"] == "OPTIONS"
                    and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ):
                body = self._preflight(start)
            else:
                body = self.app(environ, start)
        except BaseException:
            self.metrics.in_flight.dec()
            REQUEST_ID.reset(token)
            raise
        return _Accounted(body, lambda sent: self._account(
            environ, status, sent, started, request_id, token))

    def _preflight(self, start):
        """Answer a CORS preflight of an allowed origin: 204, no body."""
        start("204 No Content", [
            ("Access-Control-Allow-Methods", _METHODS),
            ("Access-Control-Allow-Headers", _PREFLIGHT_HEADERS),
            ("Access-Control-Max-Age", "600"), ("Content-Length", "0")])
        return [b""]

    def _account(self, environ, status, sent, started, request_id, token):
        """Record the finished request in the metrics and the access log."""
        seconds = time.perf_counter() - started
        code = int(status[0].split(" ", 1)[0]) if status else 500
        route = environ.get(ROUTE_KEY)
        template = (environ.get("SCRIPT_NAME", "") + route.rule
                    if route is not None else "unmatched")
        method = environ.get("REQUEST_METHOD", "")
        self.metrics.observe_request(template, method, code, seconds)
        self.metrics.in_flight.dec()
        served = environ.get(SERVED_KEY) or {}
        log_access({
            "request_id": request_id, "method": method,
            "route": template, "path": environ.get("PATH_INFO", ""),
            "status": code, "duration_seconds": round(seconds, 6),
            "bytes": sent,
            "client": (self.client_address(environ)
                       if self.client_address else
                       environ.get("REMOTE_ADDR")),
            "key": environ.get(KEY_NAME), "model": served.get("name"),
            "version": served.get("version"), "label": served.get("label"),
            "error": environ.get(ERROR_CODE_KEY)})
        REQUEST_ID.reset(token)


class _Accounted:
    """A response body that reports its size once the server is done."""

    def __init__(self, body, done):
        """Wrap ``body``; call ``done(bytes sent)`` when it is closed."""
        self._body = body
        self._done = done
        self._sent = 0

    def __iter__(self):
        """Yield the body's chunks, counting their bytes."""
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self):
        """Close the wrapped body, then account for the request."""
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            self._done(self._sent)
