"""The word stores used directly, without HTTP: one contract, two backends.

Every contract test runs against SQLite and against a real redis-server.
"""

import sqlite3
import threading
import uuid

import pytest

from app.errors import Unavailable
from app.words.redis_store import RedisWordStore
from app.words.sqlite_store import SqliteWordStore
from app.words.store import (
    MAX_COUNT, CountOutOfRange, WordExists, WordNotFound)
from tests.redis_server import free_port


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    """Yield an empty store of each backend."""
    if request.param == "sqlite":
        opened = SqliteWordStore(tmp_path / "words.sqlite3")
    else:
        server = request.getfixturevalue("redis_server")
        opened = RedisWordStore(server.url, f"test-{uuid.uuid4().hex}:")
    yield opened
    opened.close()


def test_sqlite_creates_parent_folder_and_uses_wal(tmp_path):
    """The SQLite store makes its folder and runs in WAL mode."""
    store = SqliteWordStore(tmp_path / "nested" / "words.sqlite3")
    store.close()
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


def test_ping_fails_after_close(tmp_path):
    """A closed SQLite store is reported as not answering."""
    store = SqliteWordStore(tmp_path / "words.sqlite3")
    store.ping()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.ping()


def test_unreachable_redis_is_unavailable():
    """A Redis outage is a 503-class error, not an internal one."""
    store = RedisWordStore(f"redis://127.0.0.1:{free_port()}/0",
                           socket_timeout=1)
    with pytest.raises(Unavailable) as caught:
        store.get("word")
    assert caught.value.code == "store_unavailable"


def test_redis_counts_above_2_to_the_53_stay_exact(store):
    """Counts near 2**63 survive increments without float rounding."""
    store.create("huge", MAX_COUNT - 10)
    assert store.increment("huge", 3) == MAX_COUNT - 7
    assert store.get("huge") == MAX_COUNT - 7
    store.add_counts({"huge": 7})
    assert store.get("huge") == MAX_COUNT
