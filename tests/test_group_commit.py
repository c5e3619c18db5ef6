"""Group commit: writes queued together share one transaction, safely."""

import sqlite3
import threading
import time

import pytest

from app.words.group_commit import GroupCommit

WAIT = 10.0


def connect(path):
    """Open a connection as the store does: autocommit, shared by threads."""
    connection = sqlite3.connect(path, isolation_level=None,
                                 check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    return connection


@pytest.fixture
def database(tmp_path):
    """Return the path of a database with a table of numbered rows."""
    path = tmp_path / "group.sqlite3"
    with connect(path) as connection:
        connection.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY)")
    return path


def stored_ids(path):
    """Return the ids committed so far, read on a new connection."""
    connection = connect(path)
    try:
        return {row[0] for row in connection.execute("SELECT id FROM rows")}
    finally:
        connection.close()


class Writers:
    """Threads that each send one write through the same GroupCommit."""

    def __init__(self, path, group):
        """Prepare to start writers on their own connections."""
        self.path, self.group = path, group
        self.outcomes, self.ran_on = {}, {}
        self.threads = []

    def start(self, name, function):
        """Start a writer thread; its function records which thread ran it."""
        def write(connection):
            self.ran_on[name] = threading.current_thread().name
            return function(connection)

        def run():
            connection = connect(self.path)
            try:
                self.outcomes[name] = ("ok", self.group.run(connection,
                                                            write))
            except Exception as error:  # recorded for the test to check
                self.outcomes[name] = ("error", error)
            finally:
                connection.close()
        thread = threading.Thread(target=run, name=name)
        self.threads.append(thread)
        thread.start()

    def join(self):
        """Wait for every writer."""
        for thread in self.threads:
            thread.join(WAIT)
            assert not thread.is_alive()


def insert(row_id):
    """Return a write that inserts one row and returns its id."""
    def write(connection):
        connection.execute("INSERT INTO rows (id) VALUES (?)", (row_id,))
        return row_id
    return write


def queue_behind_a_blocked_leader(database, group, writes):
    """Start a leader that blocks, queue ``writes`` behind it, release it."""
    release = threading.Event()
    writers = Writers(database, group)

    def blocking(connection):
        release.wait(WAIT)
        return insert(1)(connection)
    writers.start("leader", blocking)
    deadline = time.monotonic() + WAIT
    while "leader" not in writers.ran_on and time.monotonic() < deadline:
        time.sleep(0.001)
    for name, function in writes.items():
        writers.start(name, function)
    # The writes are queued once their threads wait for the commit lock.
    while len(group._queue) < len(writes) and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    writers.join()
    return writers


def test_writes_queued_together_commit_in_one_group(database):
    """Writes that queued behind a commit run together, by one thread."""
    group = GroupCommit()
    writers = queue_behind_a_blocked_leader(database, group, {
        name: insert(row_id) for name, row_id in
        (("a", 2), ("b", 3), ("c", 4))})
    assert writers.outcomes == {"leader": ("ok", 1), "a": ("ok", 2),
                                "b": ("ok", 3), "c": ("ok", 4)}
    assert len({writers.ran_on[name] for name in "abc"}) == 1
    assert stored_ids(database) == {1, 2, 3, 4}


def test_a_refused_write_rolls_back_alone(database):
    """A write that raises undoes its own changes; its group commits."""
    def refused(connection):
        connection.execute("INSERT INTO rows (id) VALUES (99)")
        raise LookupError("no such word")
    writers = queue_behind_a_blocked_leader(database, GroupCommit(), {
        "a": insert(2), "refused": refused, "c": insert(4)})
    kind, error = writers.outcomes["refused"]
    assert kind == "error" and isinstance(error, LookupError)
    assert writers.outcomes["a"] == ("ok", 2)
    assert writers.outcomes["c"] == ("ok", 4)
    assert stored_ids(database) == {1, 2, 4}


def test_a_database_error_fails_the_whole_group(database):
    """If the transaction fails, no write of the group is acknowledged."""
    writers = queue_behind_a_blocked_leader(database, GroupCommit(), {
        "a": insert(2), "duplicate": insert(2), "c": insert(4)})
    for name in ("a", "duplicate", "c"):
        kind, error = writers.outcomes[name]
        assert kind == "error" and isinstance(error, sqlite3.IntegrityError)
    assert writers.outcomes["leader"] == ("ok", 1)
    assert stored_ids(database) == {1}


def test_many_threads_lose_no_write(database):
    """Every write of many concurrent threads is committed exactly once."""
    group = GroupCommit()
    writers = Writers(database, group)
    for row_id in range(1, 65):
        writers.start(f"w{row_id}", insert(row_id))
    writers.join()
    assert all(kind == "ok" for kind, _ in writers.outcomes.values())
    assert stored_ids(database) == set(range(1, 65))
