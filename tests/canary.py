"""Loopback HTTP servers that count every connection and request.

Tests that fetch URLs point them only at these canaries, on loopback
addresses, so that a broken address guard can reach nothing else; a
canary's counters prove whether a refused URL was really never contacted.
"""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"\x89PNG canary image bytes"


class CanaryHandler(BaseHTTPRequestHandler):
    """Record each request and answer it from the canary's routes."""

    def do_GET(self):
        """Record the request, then answer it."""
        canary = self.server.canary
        canary.requests.append((self.path, self.headers.get("Host")))
        route = canary.routes.get(self.path, not_found)
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the fetcher hung up on purpose

    def log_message(self, format, *args):
        """Keep the test output quiet."""
        pass


class CanaryServer(ThreadingHTTPServer):
    """Count every connection, not just every complete request."""

    def verify_request(self, request, client_address):
        """Count the connection before any request is read."""
        self.canary.connections += 1
        return True

    def handle_error(self, request, client_address):
        """Ignore clients that hang up, as the fetcher does on purpose."""
        pass


class Canary:
    """An HTTP server on a loopback address that counts what reaches it."""

    def __init__(self, host, family=socket.AF_INET, tls_context=None):
        """Start serving on ``host``, port 0, in a daemon thread."""
        server_class = type("Server", (CanaryServer,),
                            {"address_family": family})
        self.server = server_class((host, 0), CanaryHandler)
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(
                self.server.socket, server_side=True)
        self.server.canary = self
        self.port = self.server.server_address[1]
        self.connections = 0
        self.requests = []
        self.routes = {"/": send_body(BODY)}
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def close(self):
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=2)


def send_body(body, declare_length=True, headers=()):
    """Return a route that answers 200 with ``body``."""
    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        if declare_length:
            handler.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
    return route


def redirect(location):
    """Return a route that answers 302 to ``location``."""
    def route(handler):
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return route


def not_found(handler):
    """Answer 404."""
    handler.send_error(404)


def drip_body(handler):
    """Promise 1000 bytes and send one every 20 ms."""
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    for _ in range(1000):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.02)


def drip_headers(handler):
    """Send the status line, then a never-ending header a byte at a time."""
    handler.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
    for _ in range(1000):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.02)


def send_after(seconds, body=BODY):
    """Return a route that waits ``seconds``, then answers 200 with body."""
    answer = send_body(body)

    def route(handler):
        time.sleep(seconds)
        answer(handler)
    return route
