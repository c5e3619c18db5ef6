"""One time limit over fetching, enforced whatever the server does.

Socket timeouts bound each wait, not their sum: a server that sends a
byte every few seconds never trips them.  A ``Deadline`` therefore shuts
the current connection's socket down when the time is up, which ends any
read blocked on it, in the TLS handshake, headers or body alike.  One
deadline can cover several fetches, so that a request with many URLs
holds a worker for one limit, not one limit per URL.
"""

import socket
import threading
import time

import urllib3

from app.fetch.errors import fetch_failed


class Deadline:
    """Bound one or more fetches in time, as a context manager."""

    def __init__(self, seconds, activity="the fetch"):
        """Start counting ``seconds`` from now for ``activity``."""
        self._seconds = seconds
        self._activity = activity
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._connection = None
        self._socket = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self.expired = False

    def __enter__(self):
        """Arm the timer."""
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        """Disarm the timer."""
        self._timer.cancel()

    def bound(self, timeout):
        """Return ``timeout`` cut down to the time left, or fail if none."""
        self.check()
        return min(timeout, max(self._end - time.monotonic(), 0.001))

    def check(self):
        """Fail if the time is up."""
        if self._passed():
            raise fetch_failed(self._message())

    def explain(self, error):
        """Say why a fetch broke, blaming the deadline if it had passed."""
        if self._passed():
            return self._message()
        if isinstance(error, (TimeoutError,
                              urllib3.exceptions.TimeoutError)):
            return "timed out"
        return type(error).__name__

    def watch(self, connection):
        """Make ``connection`` the one to cut when the time is up."""
        with self._lock:
            self._connection = connection
            self._socket = None
        self.check()

    def connected(self, connection):
        """Keep hold of the socket ``connection`` has just opened.

        http.client forgets it as soon as a response says the connection
        will close, but the response goes on reading from it.
        """
        with self._lock:
            self._socket = connection.sock

    def release(self, connection, response=None):
        """Close a connection and response the timer must not touch."""
        with self._lock:
            if self._connection is connection:
                self._connection = None
                self._socket = None
            if response is not None:
                response.close()
            connection.close()

    def _passed(self):
        """Tell whether the time is up, whether or not the timer ran."""
        return self.expired or time.monotonic() >= self._end

    def _expire(self):
        """Shut the watched socket down so that blocked reads end now."""
        with self._lock:
            self.expired = True
            sock = self._socket
            if sock is None and self._connection is not None:
                # Still in the TLS handshake: the plain TCP socket.
                sock = self._connection.sock
            if sock is None:
                return
            try:
                # The plain socket method: an SSL socket's own shutdown
                # would tear down TLS state another thread is using.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def _message(self):
        """Describe fetching that ran out of time."""
        return f"{self._activity} took longer than {self._seconds} seconds"
