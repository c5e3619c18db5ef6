"""Word store on SQLite: WAL mode, one connection per thread, atomic SQL.

Reads run on the calling thread's connection in autocommit mode; writes
go through :class:`~app.words.group_commit.GroupCommit`, so writes that
arrive together share one durable commit.
"""

import contextlib
import sqlite3
import threading
from pathlib import Path

from app.words.group_commit import GroupCommit
from app.words.store import (
    MAX_COUNT, CountOutOfRange, WordExists, WordNotFound, WordStore,
    translate_errors)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS words (
    word  TEXT PRIMARY KEY,
    count INTEGER NOT NULL CHECK (count BETWEEN 0 AND 9223372036854775807)
) WITHOUT ROWID
"""
# Bounds are computed in Python so that "count + ?" can never overflow:
# SQLite silently turns an overflowing integer sum into a float.
_INCREMENT = """
UPDATE words SET count = count + :delta
WHERE word = :word AND count BETWEEN :low AND :high
RETURNING count
"""
_UPSERT = """
INSERT INTO words (word, count) VALUES (?, ?)
ON CONFLICT (word) DO UPDATE SET count = count + excluded.count
"""
# GLOB is case-sensitive, so SQLite can answer a prefix from the primary
# key index; normalised words never contain GLOB's special characters.
_MATCH = "word GLOB :pattern"


@translate_errors(sqlite3.OperationalError)
class SqliteWordStore(WordStore):
    """Word counts in one SQLite file, shared safely by worker threads."""

    def __init__(self, path, busy_timeout_ms=5000):
        """Open (creating if needed) the database file and its schema."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._connections = []
        self._lock = threading.Lock()
        # SQLite lets one writer in at a time; this process's writers
        # queue for a group commit, where SQLite's busy handler would make
        # them sleep and retry. Other processes still wait on busy_timeout.
        self._group = GroupCommit()
        self._closed = False
        self._connection().execute(_SCHEMA)

    def _connection(self):
        """Return this thread's connection, opening it on first use."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self._closed:
                raise sqlite3.ProgrammingError("the store is closed")
            # Autocommit mode: single statements commit at once, and
            # multi-statement work opens its own transaction explicitly.
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False,
                timeout=self._busy_timeout_ms / 1000)
            connection.execute(f"PRAGMA busy_timeout = "
                               f"{int(self._busy_timeout_ms)}")
            connection.execute("PRAGMA journal_mode = WAL")
            # FULL syncs the WAL on every commit: an acknowledged write
            # survives a killed process and a lost host alike.
            connection.execute("PRAGMA synchronous = FULL")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def create(self, word, count):
        """Store a new word; raise WordExists if it is already there."""
        def create(connection):
            try:
                connection.execute(
                    "INSERT INTO words (word, count) VALUES (?, ?)",
                    (word, count))
            except sqlite3.IntegrityError:
                raise WordExists(f"word {word!r} already exists") from None
        self._write(create)

    def get(self, word):
        """Return the word's count; raise WordNotFound if it is missing."""
        return _count_of(self._connection(), word)

    def put(self, word, count):
        """Set the word's count; return True if the word was created."""
        def put(connection):
            updated = connection.execute(
                "UPDATE words SET count = ? WHERE word = ?", (count, word))
            if updated.rowcount:
                return False
            connection.execute(
                "INSERT INTO words (word, count) VALUES (?, ?)",
                (word, count))
            return True
        return self._write(put)

    def increment(self, word, delta):
        """Add delta atomically and return the new count."""
        low, high = max(0, -delta), min(MAX_COUNT, MAX_COUNT - delta)

        def increment(connection):
            rows = connection.execute(_INCREMENT, {
                "delta": delta, "word": word, "low": low,
                "high": high}).fetchall()
            if rows:
                return rows[0][0]
            current = _count_of(connection, word)
            raise CountOutOfRange(
                f"adding {delta} to {current} would leave 0..{MAX_COUNT}")
        return self._write(increment)

    def delete(self, word):
        """Remove the word; raise WordNotFound if it is missing."""
        def delete(connection):
            deleted = connection.execute(
                "DELETE FROM words WHERE word = ?", (word,))
            if not deleted.rowcount:
                raise WordNotFound(f"word {word!r} not found")
        self._write(delete)

    def list(self, prefix, limit, offset):
        """Return ``([(word, count), ...], total)`` sorted by word."""
        pattern = {"pattern": prefix + "*", "limit": limit, "offset": offset}
        # One read transaction, so the page and the total agree.
        with self._read_transaction() as connection:
            rows = connection.execute(
                f"SELECT word, count FROM words WHERE {_MATCH} "
                "ORDER BY word LIMIT :limit OFFSET :offset",
                pattern).fetchall()
            (total,) = connection.execute(
                f"SELECT COUNT(*) FROM words WHERE {_MATCH}",
                pattern).fetchone()
        return rows, total

    def add_counts(self, counts):
        """Add every ``{word: n}`` in one transaction: all or nothing."""
        def add_counts(connection):
            for word, added in counts.items():
                row = connection.execute(
                    "SELECT count FROM words WHERE word = ?",
                    (word,)).fetchone()
                if row is not None and row[0] > MAX_COUNT - added:
                    raise CountOutOfRange(
                        f"adding {added} to {word!r} would exceed "
                        f"{MAX_COUNT}")
            connection.executemany(_UPSERT, counts.items())
        self._write(add_counts)

    def ping(self):
        """Raise if the database cannot answer a query right now."""
        self._connection().execute("SELECT 1 FROM words LIMIT 1").fetchall()

    def close(self):
        """Close every thread's connection."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def _write(self, function):
        """Run ``function(connection)`` in a group commit; return result."""
        return self._group.run(self._connection(), function)

    @contextlib.contextmanager
    def _read_transaction(self):
        """Run a block of reads in one snapshot of the database."""
        connection = self._connection()
        connection.execute("BEGIN")
        try:
            yield connection
        finally:
            connection.execute("COMMIT")


def _count_of(connection, word):
    """Return the word's count; raise WordNotFound if it is missing."""
    row = connection.execute(
        "SELECT count FROM words WHERE word = ?", (word,)).fetchone()
    if row is None:
        raise WordNotFound(f"word {word!r} not found")
    return row[0]
