"""The word store interface, the count range, and the errors stores raise."""

import abc
import functools

from app.errors import Conflict, NotFound, Unavailable

# Counts are signed 64-bit integers in both stores (SQLite's INTEGER, and
# what clients in most languages can hold), never negative.
MAX_COUNT = 2 ** 63 - 1


class WordExists(Conflict):
    """A word that is being created is already stored."""

    code = "word_exists"


class WordNotFound(NotFound):
    """The addressed word is not stored."""

    code = "word_not_found"


class CountOutOfRange(Conflict):
    """An increment would take a count below 0 or above 2**63-1."""

    code = "count_out_of_range"


class WordStore(abc.ABC):
    """Persistent word counts; every method is safe to call from any thread.

    Words passed in are already normalised; counts are already validated.
    Implementations raise the errors above and nothing HTTP-specific.
    """

    @abc.abstractmethod
    def create(self, word, count):
        """Store a new word; raise WordExists if it is already there."""

    @abc.abstractmethod
    def get(self, word):
        """Return the word's count; raise WordNotFound if it is missing."""

    @abc.abstractmethod
    def put(self, word, count):
        """Set the word's count; return True if the word was created."""

    @abc.abstractmethod
    def increment(self, word, delta):
        """Add delta atomically and return the new count.

        Raise WordNotFound if the word is missing and CountOutOfRange,
        leaving the count unchanged, if the result would leave 0..2**63-1.
        """

    @abc.abstractmethod
    def delete(self, word):
        """Remove the word; raise WordNotFound if it is missing."""

    @abc.abstractmethod
    def list(self, prefix, limit, offset):
        """Return ``([(word, count), ...], total)`` sorted by word."""

    @abc.abstractmethod
    def add_counts(self, counts):
        """Add every ``{word: n}`` in one transaction: all or nothing."""

    @abc.abstractmethod
    def ping(self):
        """Raise if the store cannot answer a query right now."""

    @abc.abstractmethod
    def close(self):
        """Release every connection; the store is unusable afterwards."""


def translate_errors(*backend_errors):
    """Make a store class report its backend's outages as a 503.

    Applied to a WordStore subclass, every public method re-raises the
    given backend exceptions (a lock timeout, a lost connection) as
    Unavailable, which clients may retry, instead of an internal error.
    """
    def wrap(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except backend_errors as error:
                raise Unavailable(f"the word store is unavailable: {error}",
                                  code="store_unavailable") from error
        return wrapper

    def decorate(cls):
        for name in WordStore.__abstractmethods__ - {"close"}:
            setattr(cls, name, wrap(getattr(cls, name)))
        return cls
    return decorate
