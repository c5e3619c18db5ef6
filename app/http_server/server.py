"""cheroot's WSGI server, wired to read requests whole before work.

:class:`Server` is :class:`cheroot.wsgi.Server` with a connection
manager that reads each request ahead on the selector thread
(:mod:`app.http_server.connections`) and a request class whose own
errors are JSON (:mod:`app.http_server.request`). It can also stop
without dropping a connection: :meth:`Server.stop_accepting` closes the
port without resetting the connections queued on it, and
:meth:`Server.wait_until_closed` waits for the clients to be done with
the connections they have.
"""

import logging
import threading
import time
import weakref

from cheroot import wsgi

from app.http_server.connections import (
    ReadAheadConnection, ReadAheadManager)
from app.http_server.listener import refuse_new_connections

log = logging.getLogger(__name__)

# How long a handshake that began before the port stopped taking new
# connections has to complete: a round trip between a proxy and the
# service (well under a millisecond on one network), with room to spare.
# New clients wait a second longer meanwhile, so it stays short.
HANDSHAKE_SECONDS = 0.05
# How often the wait for the last connections looks at their count.
POLL_SECONDS = 0.05


class Server(wsgi.Server):
    """A WSGI server whose workers only ever get whole requests."""

    ConnectionClass = ReadAheadConnection

    def __init__(self, bind_addr, wsgi_app, limits, **kwargs):
        """Take cheroot's arguments and the read-ahead limits."""
        super().__init__(bind_addr, wsgi_app, **kwargs)
        self.read_ahead_limits = limits
        # Weak, so that a connection dropped without close() (its socket
        # closed when it is collected) does not count forever.
        self._open_connections = weakref.WeakSet()
        self._open_lock = threading.Lock()

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

    def connection_opened(self, conn):
        """Count a connection just accepted."""
        with self._open_lock:
            self._open_connections.add(conn)

    def connection_closed(self, conn):
        """Count a connection as gone, however often it is closed."""
        with self._open_lock:
            self._open_connections.discard(conn)

    @property
    def open_connections(self):
        """Return how many accepted connections are not closed yet.

        Those idle between two requests, those being read and those a
        worker holds all count.
        """
        with self._open_lock:
            return len(self._open_connections)

    def stop_accepting(self, timeout=None):
        """Close the port without resetting a connection queued on it.

        New connections are kept out of the listening socket's queue
        first (:mod:`app.http_server.listener`); once the handshakes
        under way have had time to complete, the selector thread accepts
        every connection queued and closes the socket. Connections
        already accepted are served on as before. Return True once the
        port is closed, False if the server is not serving or did not
        close it within ``timeout`` (by default, a few sweeps of the
        selector thread); :meth:`stop` then closes it.
        """
        sock = self.socket
        if sock is None or not self.ready:
            return False
        if refuse_new_connections(sock):
            time.sleep(HANDSHAKE_SECONDS)
        else:
            log.warning("cannot keep new connections out of the listening "
                        "socket's queue; one arriving as it closes is reset")
        self._connections.close_listener()
        if timeout is None:
            timeout = 4 * self.expiration_interval + 1.0
        return self._connections.listener_closed.wait(timeout)

    def wait_until_closed(self, timeout, cancel=None):
        """Wait until every connection is closed; tell whether all are.

        Meant for after :meth:`stop_accepting`, with
        ``keep_alive_conn_limit`` 0 so that every answer says
        Connection: close: a connection then closes once its answer is
        sent, or when its client closes it, or once idle for as long as
        the server allows (``self.timeout``). A server that closes an
        idle connection sooner races a client that sends a request on it
        at that instant; waiting avoids that. Return early, with False,
        once ``timeout`` seconds have passed or ``cancel`` is set.
        """
        deadline = time.monotonic() + timeout
        cancel = cancel or threading.Event()
        while self.open_connections:
            left = deadline - time.monotonic()
            if left <= 0 or cancel.wait(min(left, POLL_SECONDS)):
                return False
        return True
