"""Bound the memory that image decodes running at the same time may hold.

A decoded image needs far more memory than its encoded bytes: a 150 kB
PNG can decode to 160 MB of pixels. Each decode reserves the peak bytes
it expects from the image header before it decodes anything, and gives
them back when it is done; one :class:`DecodeBudget` shared by the whole
process keeps the sum of those reservations under a fixed ceiling.
"""

import collections
import contextlib
import threading
import time

from app.errors import PayloadTooLarge, Unavailable

_MIB = 1024 * 1024


class DecodeBudget:
    """A process-wide allowance of bytes that concurrent decodes share.

    Reservations are served first come, first served: a decode waits
    while an earlier one is still waiting, even if its own smaller
    reservation would fit, so that large images are not starved by a
    stream of small ones.
    """

    def __init__(self, max_bytes, wait_timeout):
        """Allow up to max_bytes at once; wait_timeout seconds in queue."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        if wait_timeout < 0:
            raise ValueError(
                f"wait_timeout must not be negative, not {wait_timeout}")
        self.max_bytes = max_bytes
        self.wait_timeout = wait_timeout
        self._in_use = 0
        self._queue = collections.deque()
        self._changed = threading.Condition(threading.Lock())

    @property
    def in_use(self):
        """Return the bytes currently reserved."""
        with self._changed:
            return self._in_use

    @property
    def waiting(self):
        """Return how many reservations are queued, not yet granted."""
        with self._changed:
            return len(self._queue)

    def acquire(self, nbytes):
        """Reserve nbytes, waiting for earlier reservations to end.

        Raise PayloadTooLarge (``image_too_many_pixels``) at once when
        nbytes alone exceeds the whole budget, as waiting could never
        help, and Unavailable (``decode_busy``) when the reservation is
        not granted within the wait timeout.
        """
        nbytes = max(0, int(nbytes))
        if nbytes > self.max_bytes:
            raise PayloadTooLarge(
                f"Decoding the image would take about {nbytes // _MIB} "
                f"MiB; the limit is {self.max_bytes // _MIB} MiB.",
                code="image_too_many_pixels")
        deadline = time.monotonic() + self.wait_timeout
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            try:
                while (self._queue[0] is not ticket
                       or self._in_use + nbytes > self.max_bytes):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise Unavailable(
                            "Too many large images are being decoded; "
                            "retry shortly.", code="decode_busy")
                    self._changed.wait(remaining)
                self._in_use += nbytes
            finally:
                self._queue.remove(ticket)
                # Whether granted or given up, the head of the queue may
                # have changed, and the new head may now fit.
                self._changed.notify_all()
        return nbytes

    def release(self, nbytes):
        """Give back bytes that an earlier acquire reserved."""
        nbytes = max(0, int(nbytes))
        with self._changed:
            if nbytes > self._in_use:
                raise ValueError(
                    f"releasing {nbytes} bytes but only {self._in_use} "
                    "are reserved")
            self._in_use -= nbytes
            self._changed.notify_all()

    @contextlib.contextmanager
    def reserve(self, nbytes):
        """Hold a reservation of nbytes for the duration of a with block."""
        granted = self.acquire(nbytes)
        try:
            yield granted
        finally:
            self.release(granted)
