"""The benchmark's load generator drives wrk against real servers.

These tests need wrk (``make test`` installs it as root on Debian). They
run wrk against the bare cheroot app the benchmark measures and against
a small cheroot app of their own, which checks every upload byte for
byte and answers 404 off its routes.
"""

import collections
import sys
import threading
import time

import pytest
from cheroot import wsgi

from app.settings import PROJECT_ROOT
from bench import servers
from bench.load import (
    Request, WrkError, combine_load_results, multipart_body, run_load)

# Every byte value, NUL and CR LF included, as in a JPEG upload.
UPLOAD, UPLOAD_TYPE = multipart_body(
    "image", "bytes.bin", bytes(range(256)) * 400,
    content_type="application/octet-stream")
SLOW_SECONDS = 0.25


def checking_app(environ, start_response):
    """Answer 200 to an exact copy of UPLOAD, 400 to others, 404 elsewhere.

    ``/slow`` answers 200 after SLOW_SECONDS.
    """
    path = environ["PATH_INFO"]
    if path == "/upload":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        received = environ["wsgi.input"].read(length)
        status = "200 OK" if received == UPLOAD else "400 Bad Request"
    elif path == "/slow":
        time.sleep(SLOW_SECONDS)
        status = "200 OK"
    else:
        status = "404 Not Found"
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", "0")])
    return [b""]


@pytest.fixture
def checking_server():
    """Serve checking_app on a free loopback port; yield its address."""
    server = wsgi.Server(("127.0.0.1", 0), checking_app, numthreads=4)
    # cheroot notices a stop once per expiration interval (0.5 s by
    # default); a short one ends the test sooner.
    server.expiration_interval = 0.02
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server.bind_addr[:2]
    finally:
        server.stop()
        thread.join(timeout=10)


@pytest.fixture
def hello_server(tmp_path):
    """Run bench/hello_app.py as the benchmark does; yield its address."""
    server = servers.ServerProcess(
        [sys.executable, str(PROJECT_ROOT / "bench" / "hello_app.py"),
         "--port", "0"], tmp_path / "hello.log", cwd=PROJECT_ROOT)
    with server.start():
        yield server.address
        server.check_alive()


def test_hello_app_answers_exactly_the_requests_asked_for(hello_server):
    """200 requests at concurrency 4 time exactly 200 answers.

    Exactly, not about: a timed request is sent only for one of the 200
    tickets handed out, and wrk is stopped once every ticket is answered.
    """
    result = run_load(hello_server, [Request("GET", "/")], 200, 4)
    assert result.ok == 200
    assert result.errors == collections.Counter()
    assert result.warm_ups == 8
    assert not result.timed_out
    assert 0 < result.percentile(0.5) <= result.percentile(0.99)
    assert result.rate > 0
    again = run_load(hello_server, [Request("GET", "/")], 100, 4)
    both = combine_load_results([result, again])
    assert both.ok == 300
    assert both.warm_ups == 16
    assert both.seconds == result.seconds + again.seconds


def test_bodies_arrive_whole_and_other_statuses_count_as_errors(
        checking_server):
    """Binary uploads reach the server intact; 404 answers are errors.

    The requests are sent in turn across all connections, so half of
    40 timed requests are uploads answered 200 and half are answered
    404; each connection's two warm-up requests are one of each.
    """
    requests = [
        Request("POST", "/upload", UPLOAD, (("Content-Type", UPLOAD_TYPE),)),
        Request("GET", "/missing")]
    result = run_load(checking_server, requests, 40, 2)
    assert result.ok == 20
    assert result.errors == collections.Counter({"HTTP 404": 20})
    assert result.warm_ups == 2
    assert result.warm_up_errors == collections.Counter({"HTTP 404": 2})
    assert not result.timed_out


def test_time_limit_stops_a_run_short(checking_server):
    """A run that cannot finish in time stops at the limit and says so."""
    began = time.monotonic()
    result = run_load(checking_server, [Request("GET", "/slow")], 100, 1,
                      time_limit=1)
    elapsed = time.monotonic() - began
    assert result.timed_out
    assert 0 < result.ok < 100
    assert result.error_count == 0
    # Warm-up (two slow answers), the one-second limit, then the answer
    # to the request in flight at the limit.
    assert elapsed < 1 + 3 * SLOW_SECONDS + 2


def test_missing_wrk_is_reported_with_its_package(monkeypatch, tmp_path):
    """Without wrk on PATH, the error names the package to install."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(WrkError, match="apt-get install wrk"):
        run_load(("127.0.0.1", 9), [Request("GET", "/")], 1, 1)
