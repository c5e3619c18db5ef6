"""cheroot's WSGI server, wired to read requests whole before work.

:class:`Server` is :class:`cheroot.wsgi.Server` with a connection
manager that reads each request ahead on the selector thread
(:mod:`app.http_server.connections`) and a request class whose own
errors are JSON (:mod:`app.http_server.request`).
"""

from cheroot import wsgi

from app.http_server.connections import (
    ReadAheadConnection, ReadAheadManager)


class Server(wsgi.Server):
    """A WSGI server whose workers only ever get whole requests."""

    ConnectionClass = ReadAheadConnection

    def __init__(self, bind_addr, wsgi_app, limits, **kwargs):
        """Take cheroot's arguments and the read-ahead limits."""
        super().__init__(bind_addr, wsgi_app, **kwargs)
        self.read_ahead_limits = limits

    def prepare(self):
        """Bind and listen as cheroot does, with the read-ahead manager."""
        super().prepare()
        if self.ssl_adapter is not None:
            # Reading ahead takes the socket's bytes as they come, which
            # under TLS are records, not requests.
            self.stop()
            raise ValueError("this server reads plain HTTP only; "
                             "terminate TLS in front of it")
        plain = self._connections
        self._connections = ReadAheadManager(self, self.read_ahead_limits)
        plain.close()

    def process_conn(self, conn):
        """Read what a connection has sent; a worker gets whole requests."""
        self._connections.receive(conn)

    def dispatch(self, conn):
        """Give a connection holding a whole request to a worker."""
        super().process_conn(conn)
