"""cheroot's request, answering its own errors as the service's JSON.

cheroot writes the errors it finds before the app runs (a malformed
request line, headers too large, an unsupported HTTP version, a timeout)
through :meth:`HTTPRequest.simple_response`, as plain text; here they
take the service's error shape. Header fields are read strictly
(:class:`~app.http_server.framing.StrictHeaderReader`), and a body the
app left unread is never drained from a slow client by a worker.
"""

import socket

from cheroot import errors
from cheroot.server import HTTPRequest

from app.http_server.framing import StrictHeaderReader
from app.http_server.responses import (
    error_code, error_response, http_date)

_MESSAGES = {
    405: "{method} is not allowed: this server is not a proxy",
    408: "the request was not received in time",
    500: "the server failed to handle the request",
    501: "the request's transfer coding is not supported",
    503: "the server is too busy to take the connection",
    505: "only HTTP/1.0 and HTTP/1.1 are supported",
}


class JsonErrorRequest(HTTPRequest):
    """An HTTP request whose server-side errors are JSON."""

    header_reader = StrictHeaderReader()
    _expect_answered = StrictHeaderReader(drop_expect=True)

    def __init__(self, server, conn, *args, **kwargs):
        """Start reading the connection's next request."""
        super().__init__(server, conn, *args, **kwargs)
        if getattr(conn.rfile, "continue_sent", False):
            # The read-ahead sent "100 Continue" already; cheroot would
            # send a second one on seeing Expect.
            conn.rfile.continue_sent = False
            self.header_reader = self._expect_answered

    def simple_response(self, status, msg=""):
        """Write an error as the service's JSON; the connection then ends."""
        status = str(status)
        number = int(status[:3])
        if isinstance(msg, bytes):
            msg = msg.decode("latin-1")
        method = getattr(self, "method", b"") or b""
        message = msg or _MESSAGES.get(number, status[4:]).format(
            method=method.decode("latin-1"))
        code = error_code(number)
        if number == 413 and "header" in message.lower():
            code = "headers_too_large"
        # Every caller of simple_response closes the connection after it;
        # saying so lets the client know not to send on it.
        self.close_connection = True
        response = error_response(status, code, message,
                                  self.server.server_name,
                                  self.server.protocol)
        try:
            self.conn.wfile.write(response)
        except socket.error as error:
            if error.args[0] not in errors.socket_errors_to_ignore:
                raise

    def send_headers(self):
        """Send the response head; close rather than drain a body later.

        The Date header comes from :data:`http_date`, formatted once a
        second; cheroot adds its own only where none is set. The head
        waits for the body's first bytes, to leave in one send with them
        (:mod:`app.http_server.writer`).
        """
        if not self.close_connection and not self._body_consumable():
            # cheroot would read the rest of the body from the socket,
            # at the client's pace, to reuse the connection.
            self.close_connection = True
        if not any(name.lower() == b"date" for name, _ in self.outheaders):
            self.outheaders.append((b"Date", http_date()))
        # Sent with the body's first bytes, or by respond() at the end.
        self.conn.wfile.hold_next()
        super().send_headers()

    def respond(self):
        """Call the app and write its answer; send anything held back."""
        try:
            super().respond()
        finally:
            self.conn.wfile.flush()

    def _body_consumable(self):
        """Tell whether what is left of the body is already in memory."""
        if self.chunked_read:
            return bool(getattr(self.rfile, "closed", True))
        remaining = getattr(self.rfile, "remaining", 0)
        return remaining <= getattr(self.conn.rfile, "pending", 0)
