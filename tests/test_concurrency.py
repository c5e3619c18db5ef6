"""Many clients incrementing one word at once lose no update."""

import concurrent.futures
import select
import socket
import time

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


def test_a_burst_of_connections_waits_in_the_listen_backlog(tmp_path):
    """Connections made before the server accepts any all get through.

    The server is bound but not serving yet, so every connection waits
    in the kernel's queue; beyond the backlog the kernel would drop the
    SYN and the client would wait a second for its retry.
    """
    burst = 40
    running = RunningServer(make_settings(tmp_path, listen_backlog=64))
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM)
               for _ in range(burst)]
    try:
        for sock in sockets:
            sock.setblocking(False)
            sock.connect_ex(running.server.bind_addr[:2])
        pending, deadline = set(sockets), time.monotonic() + 0.5
        while pending and time.monotonic() < deadline:
            _, writable, _ = select.select([], list(pending), [], 0.05)
            pending.difference_update(writable)
        assert not pending, f"{len(pending)} of {burst} connects waited"
        assert all(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                   for sock in sockets)
        with running:
            for sock in sockets:
                sock.setblocking(True)
                sock.settimeout(10)
                sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")
            answers = [sock.recv(12) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert answers == [b"HTTP/1.1 200"] * burst
