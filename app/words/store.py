"""The word store interface, its errors, and the factory that picks one."""

import abc

from app.errors import Conflict, NotFound


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


def make_store(settings):
    """Build the store that ``settings.store`` names."""
    from app.words.sqlite_store import SqliteWordStore
    return SqliteWordStore(settings.sqlite_path,
                           busy_timeout_ms=settings.sqlite_busy_timeout_ms)
