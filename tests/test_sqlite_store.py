"""The SQLite word store used directly, without HTTP."""

import sqlite3
import threading

import pytest

from app.settings import MAX_COUNT
from app.words.sqlite_store import SqliteWordStore
from app.words.store import CountOutOfRange, WordExists, WordNotFound


@pytest.fixture
def store(tmp_path):
    """Yield a store on a fresh file in a folder that does not exist yet."""
    opened = SqliteWordStore(tmp_path / "nested" / "words.sqlite3")
    yield opened
    opened.close()


def test_creates_parent_folder_and_uses_wal(store):
    """The store makes its folder and runs in WAL mode."""
    assert store.path.parent.is_dir()
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_create_get_put_delete(store):
    """The basic operations keep their contracts."""
    store.create("cat", 2)
    assert store.get("cat") == 2
    with pytest.raises(WordExists):
        store.create("cat", 5)
    assert store.put("cat", 9) is False
    assert store.put("dog", 1) is True
    assert store.get("cat") == 9
    store.delete("cat")
    with pytest.raises(WordNotFound):
        store.get("cat")
    with pytest.raises(WordNotFound):
        store.delete("cat")


def test_increment_bounds_leave_count_unchanged(store):
    """Increments stay within 0..2**63-1 and stay integers."""
    store.create("n", 5)
    assert store.increment("n", -5) == 0
    with pytest.raises(CountOutOfRange):
        store.increment("n", -1)
    store.put("n", MAX_COUNT)
    with pytest.raises(CountOutOfRange):
        store.increment("n", 1)
    assert store.get("n") == MAX_COUNT
    assert isinstance(store.get("n"), int)
    with pytest.raises(WordNotFound):
        store.increment("missing", 1)


def test_list_pages_and_prefix(store):
    """Listing pages by offset and filters by prefix."""
    for word in ["b", "a", "ab", "abc", "c"]:
        store.create(word, 1)
    assert store.list("", 2, 0) == ([("a", 1), ("ab", 1)], 5)
    assert store.list("ab", 10, 1) == ([("abc", 1)], 2)
    assert store.list("z", 10, 0) == ([], 0)


def test_add_counts_is_all_or_nothing(store):
    """A batch of counts is added whole or not at all."""
    store.add_counts({"x": 2, "y": 1})
    store.add_counts({"x": 1})
    assert (store.get("x"), store.get("y")) == (3, 1)
    store.put("full", MAX_COUNT)
    with pytest.raises(CountOutOfRange):
        store.add_counts({"new": 1, "x": 1, "full": 1})
    assert store.get("x") == 3
    with pytest.raises(WordNotFound):
        store.get("new")


def test_data_survives_reopening(tmp_path):
    """Counts are on disk, not in the store object."""
    first = SqliteWordStore(tmp_path / "w.db")
    first.create("kept", 4)
    first.close()
    second = SqliteWordStore(tmp_path / "w.db")
    assert second.get("kept") == 4
    second.close()


def test_concurrent_increments_lose_nothing(store):
    """Threads incrementing one word lose no update."""
    store.create("hits", 0)
    threads = [threading.Thread(
        target=lambda: [store.increment("hits", 1) for _ in range(200)])
        for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert store.get("hits") == 1600


def test_ping_fails_after_close(store):
    """A closed store is reported as not answering."""
    store.ping()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.ping()
