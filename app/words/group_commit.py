"""Commit writes that arrive together in one transaction: one sync for all.

With ``synchronous = FULL`` every SQLite commit waits for the disk (about
0.5 ms here), and SQLite lets one writer in at a time, so writers that
arrive together would each queue for a sync of their own. Group commit,
as PostgreSQL and MySQL do it, lets the first writer in run every write
queued behind it in one transaction, each inside its own savepoint, and
commit once:

* a write returns only after the commit that holds it, so an
  acknowledged write is exactly as durable as with one commit each;
* a write that fails (a missing word, a count out of range) rolls back
  its own savepoint only, so the others in the group still commit;
* if the transaction itself fails (the disk, a lock held by another
  process), every write of the group fails with that error: none was
  acknowledged, none is stored.

Each thread has at most one write in flight, so a group never holds more
writes than there are worker threads.
"""

import contextlib
import sqlite3
import threading


class _Write:
    """One queued write and, once its group has committed, its outcome."""

    __slots__ = ("function", "done", "result", "error", "_turn")

    def __init__(self, function):
        """Queue ``function(connection)``; it has not run yet."""
        self.function = function
        self.done = False
        self.result = None
        self.error = None
        # Held until the writer's turn comes: a lock of its own, so that
        # waking one writer wakes no other.
        self._turn = threading.Lock()
        self._turn.acquire()

    def wait_for_turn(self):
        """Sleep until :meth:`wake` (at once if it already came)."""
        self._turn.acquire()

    def wake(self):
        """End the writer's wait: its group committed, or it leads next."""
        self._turn.release()

    def outcome(self):
        """Return the write's result, or raise the error it ended with."""
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommit:
    """Run writes from many threads in shared, durable transactions."""

    def __init__(self):
        """Start with no queued write and no leader."""
        self._queue = []
        self._leading = False
        # Guards the queue and the leader flag. Waiters sleep on their own
        # locks: a leader that is done wakes the one writer that leads
        # next, then the writers of its group, and no writer wakes only
        # to find that its turn has not come.
        self._lock = threading.Lock()

    def run(self, connection, function):
        """Run ``function(connection)`` in a committed group; return result.

        ``connection`` is the calling thread's own; it is used only if
        this thread leads the group that holds its write.
        """
        write = _Write(function)
        with self._lock:
            self._queue.append(write)
            follow = self._leading
            self._leading = True
        if follow:
            write.wait_for_turn()
            if write.done:
                return write.outcome()
        # This thread leads: its write is the first of the queue.
        with self._lock:
            group, self._queue = self._queue, []
        try:
            self._commit_group(connection, group)
        finally:
            for queued in group:
                queued.done = True
            with self._lock:
                following = self._queue[0] if self._queue else None
                self._leading = following is not None
            # The next group first: its commit overlaps these wake-ups.
            if following is not None:
                following.wake()
            for queued in group:
                if queued is not write:
                    queued.wake()
        return write.outcome()

    def _commit_group(self, connection, group):
        """Run and commit a group of writes; record each one's outcome."""
        try:
            connection.execute("BEGIN IMMEDIATE")
            for write in group:
                _run_in_savepoint(connection, write)
            connection.execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(sqlite3.Error):
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            for write in group:
                write.result, write.error = None, error
            if not isinstance(error, Exception):
                raise


def _run_in_savepoint(connection, write):
    """Run one write; undo only its own changes if it raises."""
    connection.execute("SAVEPOINT write")
    try:
        write.result = write.function(connection)
    except sqlite3.Error:
        # A database error fails the whole group (see the module).
        raise
    except Exception as error:  # the write's own refusal, e.g. WordNotFound
        connection.execute("ROLLBACK TO write")
        write.error = error
    connection.execute("RELEASE write")
