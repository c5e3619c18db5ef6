"""Several service replicas sharing one Redis store act as one service."""

import concurrent.futures

from tests.conftest import Client, RunningServer, redis_settings

THREADS_PER_REPLICA = 4
INCREMENTS = 100


def test_replicas_share_words_and_lose_no_increment(tmp_path, redis_server):
    """Writes through one replica are read through the other, exactly."""
    settings = redis_settings(tmp_path, redis_server)
    with RunningServer(settings) as first, RunningServer(settings) as second:
        with Client(first.url) as client:
            assert client.post("/words", json={"word": "shared"}).ok
        with Client(second.url) as client:
            assert client.get("/words/shared").json()["count"] == 0

        def increment_many(url):
            with Client(url) as own_client:
                return sum(own_client.patch(
                    "/words/shared", json={"increment": 1}).ok
                    for _ in range(INCREMENTS))

        urls = [first.url, second.url] * THREADS_PER_REPLICA
        with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
            acknowledged = sum(pool.map(increment_many, urls))
        with Client(first.url) as client:
            count = client.get("/words/shared").json()["count"]
    assert acknowledged == count == len(urls) * INCREMENTS
