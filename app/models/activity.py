"""Predictions in flight, so that background loading can wait for a lull.

Creating an interpreter holds the GIL for tens of milliseconds and its
warm-up keeps a core busy: a version loaded in the background while
requests run makes them wait. Right after the service starts, while the
versions other than the default were loading, its first prediction took
two to four times as long as without them. So the loader waits for a
lull (no prediction running, and none for a moment) before each version,
but never longer than a bound, so that a busy service still loads every
version, and not at all while a request waits for a version to load.
"""

import contextlib
import threading
import time

# How often a waiting loader looks at its closing event.
_CLOSING_POLL_SECONDS = 0.05


class PredictionActivity:
    """Counts the predictions running and the requests waiting for a load."""

    def __init__(self, clock=time.monotonic):
        """Start counting; the start itself counts as the last activity."""
        self._clock = clock
        self._changed = threading.Condition()
        self._running = 0
        self._waiting_for_load = 0
        self._last = clock()

    @contextlib.contextmanager
    def predicting(self):
        """Count a prediction as running for the duration of a with-block."""
        with self._changed:
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._last = self._clock()
                self._changed.notify_all()

    @contextlib.contextmanager
    def waiting_for_load(self):
        """Count a request as waiting for a version still loading."""
        with self._changed:
            self._waiting_for_load += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._waiting_for_load -= 1

    def wait_for_lull(self, quiet, longest, closing=None):
        """Wait until no prediction has run for ``quiet`` seconds.

        Return True then; return False at once when a request waits for
        a version to load, when ``closing`` (an Event) is set, or after
        ``longest`` seconds.
        """
        deadline = self._clock() + longest
        with self._changed:
            while True:
                if self._waiting_for_load or (
                        closing is not None and closing.is_set()):
                    return False
                now = self._clock()
                idle = now - self._last
                if not self._running and idle >= quiet:
                    return True
                if now >= deadline:
                    return False
                wait = deadline - now
                if not self._running:
                    wait = min(wait, quiet - idle)
                self._changed.wait(min(wait, _CLOSING_POLL_SECONDS))
