"""A word store that times every operation of the store it wraps."""

import time

from app.errors import ServiceError
from app.words.store import WordStore


class TimedStore(WordStore):
    """Delegate to a store; record each operation's time and outcome."""

    def __init__(self, store, observe):
        """Wrap ``store``; ``observe(operation, outcome, seconds)``."""
        self.store = store
        self._observe = observe

    def _timed(self, operation, method, *args):
        """Run ``method``, the wrapped store's operation, and record it."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            return method(*args)
        except ServiceError as error:
            outcome = error.code
            raise
        except Exception:
            outcome = "error"
            raise
        finally:
            self._observe(operation, outcome,
                          time.perf_counter() - started)

    def create(self, word, count):
        """Store a new word; raise WordExists if it is already there."""
        return self._timed("create", self.store.create, word, count)

    def get(self, word):
        """Return the word's count; raise WordNotFound if it is missing."""
        return self._timed("get", self.store.get, word)

    def put(self, word, count):
        """Set the word's count; return True if the word was created."""
        return self._timed("put", self.store.put, word, count)

    def increment(self, word, delta):
        """Add delta atomically and return the new count."""
        return self._timed("increment", self.store.increment, word, delta)

    def delete(self, word):
        """Remove the word; raise WordNotFound if it is missing."""
        return self._timed("delete", self.store.delete, word)

    def list(self, prefix, limit, offset):
        """Return ``([(word, count), ...], total)`` sorted by word."""
        return self._timed("list", self.store.list, prefix, limit, offset)

    def add_counts(self, counts):
        """Add every ``{word: n}`` in one transaction: all or nothing."""
        return self._timed("add_counts", self.store.add_counts, counts)

    def ping(self):
        """Raise if the store cannot answer a query right now."""
        return self._timed("ping", self.store.ping)

    def close(self):
        """Release the wrapped store's connections."""
        self.store.close()
