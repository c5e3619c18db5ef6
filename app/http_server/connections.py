"""Read each request whole on the selector thread before a worker gets it.

cheroot's :class:`~cheroot.connections.ConnectionManager` watches idle
connections with a selector and gives a connection to a worker thread as
soon as it has one byte to read (a new connection at once); the worker
then blocks until the request has arrived, so a few slow or silent
clients hold every worker. :class:`ReadAheadManager` keeps a connection
on the selector instead, and reads what it sends without blocking, until
the whole request (head and body) is in memory; only then does a worker
take it, reading the bytes from memory. Meanwhile:

- a connection that has sent nothing of a request is idle, like a
  keep-alive connection between requests, and is closed after the
  server's timeout;
- the head must be complete within ``header_timeout`` of its first byte;
- the body must keep arriving at ``min_body_rate`` bytes a second, and
  may fall behind by ``body_grace`` seconds at most;
- body bytes beyond a small allowance per connection come out of one
  budget of ``max_buffered_bytes``; a connection that finds it spent
  waits, unread, until other requests give some back.

A request that misses a deadline gets a 408 JSON error and is closed.

When the server stops, the selector thread also closes the listening
socket, once it has accepted every connection queued on it
(:meth:`ReadAheadManager.close_listener`).
"""

import collections
import dataclasses
import logging
import os
import selectors
import threading
import time

from cheroot.connections import ConnectionManager
from cheroot.server import HTTPConnection

from app.http_server.framing import Refusal, RequestScanner
from app.http_server.request import JsonErrorRequest
from app.http_server.responses import error_response
from app.http_server.writer import make_file

# Most bytes read from one connection at a time.
READ_SIZE = 65536
# Body bytes a connection may hold beyond its head without the budget,
# so that small bodies (most JSON) never wait for it.
FREE_BODY_BYTES = 65536
# Most unread bytes thrown away before closing a refused connection:
# closing with unread input sends a reset, which can destroy the error
# response before the client reads it.
_DRAIN_BYTES = 4 * READ_SIZE
# Connections accepted while closing the listener, at most, per place in
# its queue: the queue empties once, and only fills again if new
# connections could not be kept out of it.
_MAX_ACCEPTS_PER_BACKLOG = 2


@dataclasses.dataclass(frozen=True)
class ReadAheadLimits:
    """What a request may take to arrive, and how much is held for it."""

    max_header_bytes: int
    max_body_bytes: int
    header_timeout: float
    min_body_rate: int
    body_grace: float
    max_buffered_bytes: int


class ReadAheadReader:
    """A connection's reader that serves the bytes read ahead first.

    The selector thread appends what arrives with :meth:`receive` while
    no worker holds the connection; a worker then reads with ``read`` and
    ``readline``, and reaches the socket (through cheroot's buffered
    reader) only once those bytes are used up.
    """

    def __init__(self, stream, sock):
        """Wrap cheroot's buffered reader of sock."""
        self._stream = stream
        self._fd = sock.fileno()
        self.ahead = bytearray()
        self._pos = 0
        self.bytes_read = 0
        self.continue_sent = False

    @property
    def pending(self):
        """Return how many bytes read ahead are still unread."""
        return len(self.ahead) - self._pos

    @property
    def closed(self):
        """Tell whether the reader is closed."""
        return self._stream.closed

    def receive(self, size):
        """Append up to size bytes the socket has now; return how many.

        Returns 0 at the end of the stream and None when nothing has
        arrived. cheroot's sockets have a timeout, so they are in
        non-blocking mode at the OS level (see the socket module's notes
        on timeouts) and a plain read of the descriptor never waits,
        where ``socket.recv`` would first wait up to the timeout.
        """
        try:
            data = os.read(self._fd, size)
        except BlockingIOError:
            return None
        self.ahead += data
        return len(data)

    def keep_unread(self):
        """Drop what was read; keep the rest as the next request's start."""
        del self.ahead[:self._pos]
        self._pos = 0
        # A worker that read past its request through cheroot's reader
        # left those bytes there; they belong to the next request.
        while self._stream.has_data():
            self.ahead += self._stream.read1(READ_SIZE)

    def has_data(self):
        """Tell whether bytes are waiting in memory."""
        return bool(self.pending) or self._stream.has_data()

    def read(self, size=-1):
        """Read size bytes, or to the end if size is negative or None."""
        if not self.pending:
            data = self._stream.read(size)
        elif size is None or size < 0:
            data = self._take(self.pending) + self._stream.read()
        else:
            data = self._take(min(size, self.pending))
            if len(data) < size:
                data += self._stream.read(size - len(data))
        self.bytes_read += len(data)
        return data

    def readline(self, size=-1):
        """Read one line, of at most size bytes if size is not negative."""
        if not self.pending:
            data = self._stream.readline(-1 if size is None else size)
            self.bytes_read += len(data)
            return data
        bounded = size is not None and size >= 0
        limit = (min(len(self.ahead), self._pos + size) if bounded
                 else len(self.ahead))
        newline = self.ahead.find(b"\n", self._pos, limit)
        data = self._take((newline + 1 if newline >= 0 else limit)
                          - self._pos)
        if (newline < 0 and not self.pending
                and not (bounded and len(data) >= size)):
            data += self._stream.readline(size - len(data) if bounded
                                          else -1)
        self.bytes_read += len(data)
        return data

    def _take(self, count):
        """Return the next count bytes read ahead."""
        with memoryview(self.ahead) as view:
            data = bytes(view[self._pos:self._pos + count])
        self._pos += count
        if self._pos == len(self.ahead):
            # Let go of a large body's memory as soon as it is read.
            self.ahead = bytearray()
            self._pos = 0
        return data

    def close(self):
        """Close the underlying reader."""
        self.ahead = bytearray()
        self._pos = 0
        self._stream.close()

    def __iter__(self):
        """Iterate over lines."""
        return self

    def __next__(self):
        """Return the next line."""
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class Intake:
    """One connection's request as it arrives: what, and how late."""

    def __init__(self, limits):
        """Start with no request."""
        self.limits = limits
        self.scanner = RequestScanner(limits.max_header_bytes,
                                      limits.max_body_bytes)
        self.restart()

    def restart(self):
        """Wait for a new request."""
        self.scanner.reset()
        self.head_deadline = None
        self.body_deadline = None
        self.body_seen = 0
        self.reserved = 0
        self.paused_at = None

    @property
    def in_request(self):
        """Tell whether some of a request has arrived."""
        return self.head_deadline is not None

    def observe(self, buffer, now):
        """Move the deadlines for what buffer holds now."""
        limits = self.limits
        if self.head_deadline is None and self.scanner.started(buffer):
            self.head_deadline = now + limits.header_timeout
        head_end = self.scanner.head_end
        if head_end is None or not limits.min_body_rate:
            return
        body = len(buffer) - head_end
        if self.body_deadline is None:
            self.body_deadline = now + limits.body_grace
        else:
            # Each byte buys 1/rate seconds, and no client may bank more
            # than the grace: sending fast and then stalling is cut too.
            self.body_deadline = min(
                self.body_deadline
                + (body - self.body_seen) / limits.min_body_rate,
                now + limits.body_grace)
        self.body_seen = body

    def overdue(self, now):
        """Return why the request is late, or None."""
        if self.head_deadline is None:
            return None
        if self.scanner.head_end is None:
            if now > self.head_deadline:
                return (f"the request head did not arrive within "
                        f"{self.limits.header_timeout:g} s")
        elif self.body_deadline is not None and now > self.body_deadline:
            return (f"the request body arrived slower than "
                    f"{self.limits.min_body_rate} bytes/s")
        return None

    def shift(self, seconds):
        """Stop the clocks for seconds the server kept the request waiting."""
        if self.head_deadline is not None:
            self.head_deadline += seconds
        if self.body_deadline is not None:
            self.body_deadline += seconds


class ReadAheadConnection(HTTPConnection):
    """A connection whose requests are read ahead, with JSON errors."""

    RequestHandlerClass = JsonErrorRequest

    def __init__(self, server, sock, makefile=None):
        """Wrap cheroot's reader of the socket in a read-ahead one.

        ``makefile`` is ignored: the server speaks plain HTTP only, and
        its responses go out through a head-holding writer.
        """
        super().__init__(server, sock, make_file)
        self.rfile = ReadAheadReader(self.rfile, sock)
        self.intake = Intake(server.read_ahead_limits)
        # A new connection is idle until it sends, like a kept-alive one.
        self.last_used = time.time()
        server.connection_opened(self)

    def close(self):
        """Close the connection; the server counts it gone once."""
        try:
            super().close()
        finally:
            self.server.connection_closed(self)


class _Waker:
    """A pipe the selector watches: a byte written to it wakes it up."""

    def __init__(self):
        """Open the pipe."""
        self._read, self._write = os.pipe()
        self._closed = False

    def fileno(self):
        """Return the end the selector watches."""
        return self._read

    def wake(self):
        """Make the selector's wait return."""
        os.write(self._write, b"!")

    def close(self):
        """Close both ends, once."""
        if not self._closed:
            self._closed = True
            os.close(self._read)
            os.close(self._write)


class ReadAheadManager(ConnectionManager):
    """cheroot's connection manager, reading requests whole before work.

    cheroot calls ``server.process_conn`` for each new connection and for
    each one that has bytes to read; the server sends those calls to
    :meth:`receive`, which reads, then hands the request to a worker
    (``server.dispatch``), refuses it, or puts the connection back on
    the selector. Only the selector thread calls :meth:`receive` and the
    expiry sweep, so the budget needs no lock.
    """

    def __init__(self, server, limits):
        """Manage server's connections within limits."""
        super().__init__(server)
        self.limits = limits
        # Room for the largest body a route accepts, whatever is set, so
        # that such an upload can always end.
        self._budget = max(limits.max_buffered_bytes, limits.max_body_bytes)
        self._paused = collections.deque()
        self._listening = True
        self._close_requested = False
        self._waker = None
        self.listener_closed = threading.Event()

    @property
    def _num_connections(self):
        """Return how many connections the selector watches.

        cheroot counts every entry but the listening socket's, which it
        assumes is always there; keep-alive is allowed below a limit of
        this count, so counting one too many is the safe side.
        """
        return len(self._selector) - (1 if self._listening else 0)

    def close_listener(self):
        """Have the selector thread close the listening socket at once.

        Woken up for it, the selector thread accepts every connection
        still queued on the socket, reads those as any other, and closes
        the socket: closing it with connections queued would reset them.
        :attr:`listener_closed` is set once it is closed.
        """
        self._close_requested = True
        # Set before the selector can see it, so that the sweep for
        # expired connections knows it for what it is.
        self._waker = waker = _Waker()
        self._selector.register(waker.fileno(), selectors.EVENT_READ,
                                data=waker)
        waker.wake()

    def put(self, conn):
        """Take a connection back after a request; read its next one.

        Called by a worker thread, so it reads nothing from the socket:
        bytes already received (a pipelined request) are judged at once,
        and otherwise the selector waits for more.
        """
        conn.last_used = time.time()
        conn.rfile.keep_unread()
        conn.intake.restart()
        if conn.rfile.pending:
            self._judge(conn)
        else:
            self._wait(conn)

    def receive(self, conn):
        """Read what conn has sent, then hand it over, refuse or wait."""
        if conn is self._waker:
            conn.close()
            self._close_listener_if_due()
            return
        try:
            self._receive(conn)
        except Exception:
            # One connection's failure must not stop the selector loop.
            self.server.error_log("error reading a request ahead",
                                  level=logging.ERROR, traceback=True)
            self._release(conn)
            conn.close()

    def _receive(self, conn):
        """Read once without blocking; see :meth:`receive`."""
        size = self._allowance(conn)
        if size <= 0:
            self._pause(conn)
            return
        try:
            count = conn.rfile.receive(size)
        except OSError:
            self._release(conn)
            conn.close()
            return
        if count == 0:
            if conn.intake.scanner.head_end is not None:
                self._refuse(conn, "400 Bad Request", "incomplete_body",
                             "the connection ended before the body did")
            elif conn.intake.in_request:
                self._refuse(conn, "400 Bad Request", "bad_request",
                             "the connection ended before the request "
                             "head did")
            else:
                conn.close()
            return
        if count is not None:
            conn.last_used = time.time()
        self._judge(conn)

    def _judge(self, conn):
        """Hand over a whole request, refuse a broken one, or wait on."""
        intake = conn.intake
        buffer = conn.rfile.ahead
        try:
            whole = intake.scanner.scan(buffer)
        except Refusal as refusal:
            self._refuse(conn, refusal.status, refusal.code,
                         refusal.message)
            return
        intake.observe(buffer, time.monotonic())
        if whole:
            self._release(conn)
            self.server.dispatch(conn)
            return
        if intake.scanner.expects_continue and not conn.rfile.continue_sent:
            # The client waits for this before it sends the body.
            conn.rfile.continue_sent = True
            self._send(conn, f"{self.server.protocol} 100 Continue\r\n\r\n"
                       .encode("ascii"))
        self._wait(conn)

    def _wait(self, conn):
        """Put conn on the selector until it has more to read."""
        self._selector.register(conn.socket.fileno(), selectors.EVENT_READ,
                                data=conn)

    def _allowance(self, conn):
        """Return how many bytes conn may read now, taking from the budget.

        A body of known length takes its whole share at once or waits
        holding none, so that two large uploads cannot each hold half of
        the budget and wait for the other forever. A chunked body, of
        unknown length, takes its share as it comes; while it waits its
        clock keeps running, so such a standoff ends in a 408.
        """
        intake = conn.intake
        held = len(conn.rfile.ahead)
        wanted = intake.scanner.wanted(conn.rfile.ahead)
        free = self.limits.max_header_bytes + FREE_BODY_BYTES
        if wanted is not None:
            need = held + wanted - free - intake.reserved
            if need > self._budget:
                self._release(conn)
                return 0
            if need > 0:
                self._budget -= need
                intake.reserved += need
            return min(wanted, READ_SIZE)
        size = READ_SIZE
        over = held + size - free - intake.reserved
        if over > 0:
            taken = min(over, self._budget)
            self._budget -= taken
            intake.reserved += taken
            size -= over - taken
        return size

    def _release(self, conn):
        """Give conn's share of the budget back, to a waiting connection."""
        intake = conn.intake
        if intake.reserved:
            self._budget += intake.reserved
            intake.reserved = 0
            self._resume()

    def _pause(self, conn):
        """Keep conn off the selector, unread, until the budget has room."""
        conn.intake.paused_at = time.monotonic()
        self._paused.append(conn)

    def _resume(self):
        """Put connections that waited for the budget back to reading."""
        now = time.monotonic()
        for _ in range(min(len(self._paused),
                           self._budget // READ_SIZE + 1)):
            conn = self._paused.popleft()
            intake = conn.intake
            if intake.scanner.wanted(conn.rfile.ahead) is not None:
                # The wait was the server's doing, not the client's.
                intake.shift(now - intake.paused_at)
                conn.last_used = time.time()
            intake.paused_at = None
            self._wait(conn)

    def _refuse(self, conn, status, code, message):
        """Answer conn with a JSON error and close it."""
        self._release(conn)
        self._send(conn, error_response(status, code, message,
                                        self.server.server_name,
                                        self.server.protocol))
        try:
            drained = 0
            while drained < _DRAIN_BYTES:
                count = conn.rfile.receive(READ_SIZE)
                conn.rfile.ahead.clear()
                if not count:
                    break
                drained += count
        except OSError:
            pass
        conn.close()

    @staticmethod
    def _send(conn, data):
        """Write a short response without blocking; give up if it can't."""
        try:
            os.write(conn.socket.fileno(), data)
        except OSError:
            pass

    def _expire(self, threshold):
        """Close idle connections; answer late requests with 408.

        The selector thread calls this between two waits: should the
        wake-up of :meth:`close_listener` not have closed the listening
        socket yet, this does.
        """
        self._close_listener_if_due()
        now = time.monotonic()
        late = []
        for fd, conn in self._selector.connections:
            if conn is self.server or conn is self._waker:
                continue
            reason = conn.intake.overdue(now)
            if reason is None and conn.last_used < threshold:
                reason = (f"the request stalled for more than "
                          f"{self.server.timeout:g} s")
            if reason is not None:
                late.append((fd, conn, reason))
        for fd, conn, reason in late:
            self._selector.unregister(fd)
            if conn.intake.in_request:
                self._refuse(conn, "408 Request Timeout", "request_timeout",
                             reason)
            else:
                conn.close()
        for conn in [conn for conn in self._paused
                     if conn.intake.overdue(now) and conn.intake.scanner
                     .wanted(conn.rfile.ahead) is None]:
            # Only a chunked body's clock runs while it waits.
            self._paused.remove(conn)
            self._refuse(conn, "408 Request Timeout", "request_timeout",
                         conn.intake.overdue(now))
        if self._budget > 0 and self._paused:
            self._resume()

    def _close_listener_if_due(self):
        """Close the listening socket if :meth:`close_listener` says so."""
        if self._listening and self._close_requested:
            self._close_listener()

    def _close_listener(self):
        """Accept every connection queued on the listener, then close it."""
        server = self.server
        sock = server.socket
        self._listening = False
        if sock is None:
            self.listener_closed.set()
            return
        try:
            self._selector.unregister(sock.fileno())
            sock.setblocking(False)
            with selectors.DefaultSelector() as queued:
                queued.register(sock, selectors.EVENT_READ)
                for _ in range(_MAX_ACCEPTS_PER_BACKLOG
                               * max(1, server.request_queue_size)):
                    if not queued.select(0):
                        break
                    conn = self._from_server_socket(sock)
                    if conn is not None:
                        server.process_conn(conn)
        finally:
            sock.close()
            server.socket = None
            self.listener_closed.set()

    def close(self):
        """Close every connection, those waiting for the budget too."""
        super().close()
        while self._paused:
            self._paused.popleft().close()
