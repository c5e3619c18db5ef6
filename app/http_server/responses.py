"""Write the service's JSON error responses from below the WSGI app.

The app renders its own errors; these are the ones the HTTP server
answers before a request reaches the app (a malformed request line,
headers too large, a request too slow), in the same shape:
``{"error": {"code": ..., "message": ...}}``.
"""

import email.utils
import json
import time

# Codes for the statuses the server answers by itself; the app uses the
# same names where it answers the same status.
CODES = {
    400: "bad_request", 405: "method_not_allowed", 408: "request_timeout",
    413: "payload_too_large", 414: "uri_too_long", 500: "internal_error",
    501: "not_implemented", 503: "unavailable",
    505: "http_version_not_supported",
}


class HttpDate:
    """The Date header's value, formatted once a second, not per response.

    ``email.utils.formatdate``, which cheroot calls for every response,
    builds a datetime and a string each time: about 8 % of the Python
    time of a small JSON answer (a profile of ``GET /words/<word>``).
    The value only changes once a second.
    """

    def __init__(self, clock=time.time):
        """Read the time from ``clock`` (seconds since the epoch)."""
        self._clock = clock
        self._cached = (None, b"")

    def __call__(self):
        """Return the current IMF-fixdate (RFC 9110) as ASCII bytes."""
        second = int(self._clock())
        cached_second, value = self._cached
        if second != cached_second:
            value = email.utils.formatdate(second, usegmt=True).encode(
                "ascii")
            # One tuple, replaced whole: threads read it without a lock.
            self._cached = (second, value)
        return value


http_date = HttpDate()


def error_code(status):
    """Return the error code for an HTTP status number."""
    return CODES.get(status, f"http_{status}")


def error_response(status, code, message, server_name,
                   protocol="HTTP/1.1"):
    """Return the bytes of a whole JSON error response that ends the talk.

    ``status`` is the status line's text after the protocol, e.g.
    ``"408 Request Timeout"``. The connection is always closed after an
    error the server answers by itself, so the response says so.
    """
    body = (json.dumps({"error": {"code": code, "message": message}})
            + "\n").encode("utf-8")
    head = (f"{protocol} {status}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            # The message can echo what the client sent; nosniff keeps a
            # browser from reading it as anything but JSON.
            "X-Content-Type-Options: nosniff\r\n"
            "Connection: close\r\n"
            f"Date: {http_date().decode('ascii')}\r\n"
            f"Server: {server_name}\r\n\r\n")
    return head.encode("latin-1") + body
