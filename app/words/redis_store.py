"""Word store on Redis, for several replicas that share one set of counts.

Each word's count is a string key ``<prefix>word:<word>``, and a sorted set
``<prefix>index`` (every score 0) lists the words in byte order, which for
UTF-8 is the code-point order SQLite's listing uses too. Writes that touch
both go through MULTI/EXEC, and read-check-write updates use WATCH, so
counts are computed in Python with exact integers: Lua scripts would see
them as doubles and lose precision above 2**53.
"""

import redis

from app.errors import Unavailable
from app.words.store import (
    MAX_COUNT, CountOutOfRange, WordExists, WordNotFound, WordStore,
    translate_errors)

# Optimistic transactions retry only when another client changed the same
# word in between; this many conflicts in a row means a pathological load.
MAX_ATTEMPTS = 1000


@translate_errors(redis.RedisError)
class RedisWordStore(WordStore):
    """Word counts in Redis, safe for many threads and many processes."""

    def __init__(self, url, key_prefix="wordcount:", socket_timeout=5.0):
        """Connect lazily to the Redis server at url."""
        self._redis = redis.Redis.from_url(
            url, socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout)
        self._index = key_prefix + "index"
        self._key_prefix = key_prefix + "word:"

    def _key(self, word):
        """Return the key holding a word's count."""
        return self._key_prefix + word

    def create(self, word, count):
        """Store a new word; raise WordExists if it is already there."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(word), count, nx=True)
            pipe.zadd(self._index, {word: 0})
            created, _ = pipe.execute()
        if not created:
            raise WordExists(f"word {word!r} already exists")

    def get(self, word):
        """Return the word's count; raise WordNotFound if it is missing."""
        value = self._redis.get(self._key(word))
        if value is None:
            raise WordNotFound(f"word {word!r} not found")
        return int(value)

    def put(self, word, count):
        """Set the word's count; return True if the word was created."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(word), count, get=True)
            pipe.zadd(self._index, {word: 0})
            previous, _ = pipe.execute()
        return previous is None

    def increment(self, word, delta):
        """Add delta atomically and return the new count."""
        def update(pipe):
            value = pipe.get(self._key(word))
            if value is None:
                raise WordNotFound(f"word {word!r} not found")
            result = int(value) + delta
            if not 0 <= result <= MAX_COUNT:
                raise CountOutOfRange(
                    f"adding {delta} to {int(value)} would leave "
                    f"0..{MAX_COUNT}")
            pipe.multi()
            pipe.set(self._key(word), result)
            return result
        return self._optimistic(update, self._key(word))

    def delete(self, word):
        """Remove the word; raise WordNotFound if it is missing."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(word))
            pipe.zrem(self._index, word)
            deleted, _ = pipe.execute()
        if not deleted:
            raise WordNotFound(f"word {word!r} not found")

    def list(self, prefix, limit, offset):
        """Return ``([(word, count), ...], total)`` sorted by word."""
        low, high = _lex_range(prefix)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrangebylex(self._index, low, high, start=offset, num=limit)
            pipe.zlexcount(self._index, low, high)
            members, total = pipe.execute()
        words = [member.decode("utf-8") for member in members]
        counts = self._redis.mget([self._key(word) for word in words])
        # A word deleted between the two round trips is left out.
        return [(word, int(count)) for word, count in zip(words, counts)
                if count is not None], total

    def add_counts(self, counts):
        """Add every ``{word: n}`` in one transaction: all or nothing."""
        words = list(counts)
        keys = [self._key(word) for word in words]

        def update(pipe):
            current = pipe.mget(keys)
            totals = {}
            for word, value in zip(words, current):
                totals[word] = int(value or 0) + counts[word]
                if totals[word] > MAX_COUNT:
                    raise CountOutOfRange(
                        f"adding {counts[word]} to {word!r} would exceed "
                        f"{MAX_COUNT}")
            pipe.multi()
            pipe.mset({self._key(word): total
                       for word, total in totals.items()})
            pipe.zadd(self._index, dict.fromkeys(words, 0))
        self._optimistic(update, *keys)

    def ping(self):
        """Raise if Redis does not answer right now."""
        self._redis.ping()

    def close(self):
        """Close every pooled connection."""
        self._redis.close()

    def _optimistic(self, update, *watched):
        """Run update(pipe) under WATCH until no other client interferes."""
        with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    pipe.watch(*watched)
                    result = update(pipe)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise Unavailable("too many concurrent updates of the same words",
                          code="store_contention")


def _lex_range(prefix):
    """Return the ZRANGEBYLEX bounds of every member starting with prefix."""
    if not prefix:
        return "-", "+"
    # 0xFF never occurs in UTF-8, so it sorts after every continuation.
    encoded = prefix.encode("utf-8")
    return b"[" + encoded, b"[" + encoded + b"\xff"
