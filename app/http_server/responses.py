"""Write the service's JSON error responses from below the WSGI app.

The app renders its own errors; these are the ones the HTTP server
answers before a request reaches the app (a malformed request line,
headers too large, a request too slow), in the same shape:
``{"error": {"code": ..., "message": ...}}``.
"""

import email.utils
import json

# Codes for the statuses the server answers by itself; the app uses the
# same names where it answers the same status.
CODES = {
    400: "bad_request", 405: "method_not_allowed", 408: "request_timeout",
    413: "payload_too_large", 414: "uri_too_long", 500: "internal_error",
    501: "not_implemented", 503: "unavailable",
    505: "http_version_not_supported",
}


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
            f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
            f"Server: {server_name}\r\n\r\n")
    return head.encode("latin-1") + body
