"""Many clients incrementing one word at once lose no update."""

import concurrent.futures

from tests.conftest import Client, RunningServer, make_settings

THREADS = 16
INCREMENTS = 500


def test_parallel_http_increments_add_up_exactly(tmp_path):
    """16 clients x 500 increments over HTTP add up exactly."""
    settings = make_settings(tmp_path, threads=THREADS)
    with RunningServer(settings) as running:
        with Client(running.url) as client:
            assert client.post("/words", json={"word": "hits"}).ok

        def increment_many(_):
            with Client(running.url) as own_client:
                return sum(own_client.patch(
                    "/words/hits", json={"increment": 1}).status_code == 200
                    for _ in range(INCREMENTS))

        with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
            acknowledged = sum(pool.map(increment_many, range(THREADS)))
        with Client(running.url) as client:
            count = client.get("/words/hits").json()["count"]
    assert acknowledged == THREADS * INCREMENTS
    assert count == THREADS * INCREMENTS
