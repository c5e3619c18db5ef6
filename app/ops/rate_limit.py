"""Limit requests per client in fixed windows, with the IETF headers' data.

Each client (an API key's name, or an address) may make ``limit``
requests per ``window`` seconds. Counters live in this process: with
several replicas behind a balancer, each enforces its own share, so a
client may make up to replicas x limit requests per window in all.
The number of clients tracked at once is bounded; the oldest windows are
forgotten first.
"""

import collections
import dataclasses
import math
import threading
import time


@dataclasses.dataclass(frozen=True)
class Decision:
    """Whether a request may go on, and what the headers should say."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


def parse_rate(text):
    """Return ``(requests, seconds)`` from ``"<requests>/<seconds>"``."""
    requests, _, seconds = text.partition("/")
    try:
        requests, seconds = int(requests), int(seconds)
    except ValueError:
        raise ValueError(f"a rate is <requests>/<seconds>, not {text!r}") \
            from None
    if requests < 1 or seconds < 1:
        raise ValueError("a rate's requests and seconds must be positive")
    return requests, seconds


class RateLimiter:
    """Count each client's requests in the current window."""

    def __init__(self, limit, window, max_clients=100000,
                 clock=time.monotonic):
        """Allow ``limit`` requests per ``window`` seconds per client."""
        self.limit = limit
        self.window = window
        self._max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._windows = collections.OrderedDict()

    def check(self, client):
        """Count one request of ``client``; return the decision."""
        now = self._clock()
        with self._lock:
            start, count = self._windows.pop(client, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            count += 1
            self._windows[client] = (start, count)
            while len(self._windows) > self._max_clients:
                self._windows.popitem(last=False)
        reset = max(1, math.ceil(start + self.window - now))
        return Decision(count <= self.limit, self.limit,
                        max(self.limit - count, 0), reset)

    def headers(self, decision):
        """Return the RateLimit-Policy and RateLimit header fields."""
        return {"RateLimit-Policy":
                f'"default";q={self.limit};w={self.window}',
                "RateLimit":
                f'"default";r={decision.remaining};t={decision.reset_seconds}'}
