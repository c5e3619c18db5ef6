"""Slow and silent clients cannot take the service down.

A request is read whole before a worker thread takes it, so connections
that send nothing, or send their head or body a trickle at a time, hold
no worker; a head that does not arrive within its deadline, or a body
that falls behind its minimum rate, gets a 408 JSON error.
"""

import http.client
import json
import re
import socket
import threading
import time

from app.settings import load_settings
from tests.conftest import TIMEOUT, RunningServer, ServiceProcess

IDLE = 64
HEADER_DRIPPERS = 16
BODY_DRIPPERS = 8
BODY_LENGTH = 100000
# 10 KB/s: a 1000-byte piece every 0.1 s.
BODY_PIECE = 1000
BODY_PERIOD = 0.1
HEADER_PERIOD = 1.0
PROBES = 20
PROBE_PERIOD = 0.4
PROBE_BOUND = 1.5
HEALTH = (b"GET /health/live HTTP/1.1\r\nHost: test\r\n"
          b"Connection: close\r\n\r\n")
DRIP_HEAD = b"GET /health/live HTTP/1.1\r\nHost: test\r\nX-Drip: "
BODY_HEAD = (b"POST /words HTTP/1.1\r\nHost: test\r\n"
             b"Content-Type: application/json\r\n"
             b"Content-Length: %d\r\n\r\n" % BODY_LENGTH)


def environment_settings(tmp_path, **variables):
    """Return settings read from APP_ variables, as a container sets them."""
    return load_settings(environ=variables, overrides={
        "sqlite_path": tmp_path / "words.sqlite3", "port": 0,
        "host": "127.0.0.1"})


def address_of(url):
    """Return (host, port) of an http:// URL on loopback."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


class Attack:
    """Idle sockets and drippers on loopback, kept up by one thread.

    A dripper the server cuts off reconnects at once, so the pressure
    lasts as long as the attack; :meth:`stop` ends it and closes every
    socket.
    """

    def __init__(self, address):
        """Connect every attacker; the thread starts sending."""
        self.address = address
        self.answers = []
        self._stop = threading.Event()
        self.idle = [self._connect() for _ in range(IDLE)]
        self.drippers = (
            [self._dripper(DRIP_HEAD, b"x", HEADER_PERIOD)
             for _ in range(HEADER_DRIPPERS)]
            + [self._dripper(BODY_HEAD, b"1" * BODY_PIECE, BODY_PERIOD)
               for _ in range(BODY_DRIPPERS)])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _connect(self):
        """Return a new non-blocking connection to the service."""
        sock = socket.create_connection(self.address, timeout=TIMEOUT)
        sock.setblocking(False)
        return sock

    def _dripper(self, head, piece, period):
        """Return a dripper's state: socket, head, piece, period, due."""
        return {"sock": self._connect(), "head": head, "next": head,
                "piece": piece, "period": period, "due": 0.0}

    def _run(self):
        """Send each dripper its next piece when due, until stopped."""
        while not self._stop.wait(BODY_PERIOD / 4):
            now = time.monotonic()
            for dripper in self.drippers:
                if now >= dripper["due"]:
                    self._step(dripper, now)

    def _step(self, dripper, now):
        """Send one piece; reconnect a dripper the server answered."""
        try:
            answer = dripper["sock"].recv(4096)
        except BlockingIOError:
            answer = None
        except OSError:
            answer = b""
        if answer is not None:
            self.answers.append(answer.split(b"\r\n", 1)[0])
            dripper["sock"].close()
            dripper["sock"] = self._connect()
            dripper["next"] = dripper["head"]
        try:
            dripper["sock"].send(dripper["next"] or dripper["piece"])
        except OSError:
            pass
        dripper["next"] = b""
        dripper["due"] = now + dripper["period"]

    def stop(self):
        """Stop sending and close every socket."""
        self._stop.set()
        self._thread.join(TIMEOUT)
        for sock in self.idle + [dripper["sock"]
                                 for dripper in self.drippers]:
            sock.close()


def probe(address):
    """Return the seconds GET /health/live takes on a new connection."""
    began = time.monotonic()
    try:
        with socket.create_connection(address,
                                      timeout=PROBE_BOUND) as sock:
            sock.sendall(HEALTH)
            status = sock.recv(12)
    except socket.timeout:
        raise AssertionError(
            f"/health/live not answered within {PROBE_BOUND} s") from None
    assert status == b"HTTP/1.1 200", status
    return time.monotonic() - began


def read_error(sock):
    """Read one response from sock; return its status and JSON error."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    body = json.loads(response.read())
    assert isinstance(body["error"]["message"], str)
    return response.status, body["error"]["code"]


def test_health_answers_within_bound_under_slow_and_idle_clients(tmp_path):
    """64 idle, 16 header and 8 body drippers; probes still answer fast.

    With default settings, every one of 20 probes of /health/live on a
    new connection is answered within 1.5 s while the attack goes on.
    """
    env = {"APP_SQLITE_PATH": str(tmp_path / "words.sqlite3")}
    with ServiceProcess(env) as service:
        address = address_of(service.url)
        attack = Attack(address)
        try:
            # Let every dripper send its first pieces: a worker that
            # took a connection is now waiting on it.
            time.sleep(1.0)
            for number in range(PROBES):
                seconds = probe(address)
                assert seconds < PROBE_BOUND, (number, seconds)
                time.sleep(PROBE_PERIOD)
        finally:
            attack.stop()
        assert service.process.poll() is None
        assert service.stop() == 0


def test_idle_connections_hold_no_worker(tmp_path):
    """Eight connections that send nothing leave both workers free."""
    with RunningServer(environment_settings(tmp_path, APP_THREADS="2")) \
            as running:
        address = running.server.bind_addr[:2]
        idle = [socket.create_connection(address, timeout=TIMEOUT)
                for _ in range(8)]
        try:
            time.sleep(0.2)
            assert probe(address) < PROBE_BOUND
        finally:
            for sock in idle:
                sock.close()


def test_silent_new_connection_is_closed_like_an_idle_one(tmp_path):
    """A connection that sends nothing is closed without an answer.

    It is treated as an idle keep-alive connection: closed after the
    server's timeout, with nothing written, not answered with a 408.
    """
    settings = environment_settings(tmp_path, APP_REQUEST_TIMEOUT="0.5")
    with RunningServer(settings) as running:
        with socket.create_connection(running.server.bind_addr[:2],
                                      timeout=TIMEOUT) as sock:
            began = time.monotonic()
            assert sock.recv(4096) == b""
            assert 0.4 < time.monotonic() - began < TIMEOUT


def test_header_dripper_gets_408_json_after_the_header_deadline(tmp_path):
    """A head sent a byte at a time is cut off with 408 at its deadline."""
    settings = environment_settings(tmp_path, APP_HEADER_TIMEOUT="1")
    with RunningServer(settings) as running:
        with socket.create_connection(running.server.bind_addr[:2],
                                      timeout=0.2) as sock:
            began = time.monotonic()
            sock.sendall(DRIP_HEAD)
            answered = False
            while not answered and time.monotonic() - began < TIMEOUT:
                sock.sendall(b"x")
                try:
                    answered = bool(sock.recv(1, socket.MSG_PEEK))
                except socket.timeout:
                    pass
            seconds = time.monotonic() - began
            assert answered, "no answer while the head kept dripping"
            sock.settimeout(TIMEOUT)
            assert read_error(sock) == (408, "request_timeout")
    assert 1.0 <= seconds < 3.0


def test_body_dripper_below_the_minimum_rate_gets_408_json(tmp_path):
    """A body arriving slower than min_body_rate is cut off with 408."""
    settings = environment_settings(
        tmp_path, APP_MIN_BODY_RATE="2000", APP_BODY_GRACE="1")
    with RunningServer(settings) as running:
        with socket.create_connection(running.server.bind_addr[:2],
                                      timeout=0.1) as sock:
            began = time.monotonic()
            sock.sendall(BODY_HEAD)
            answered = False
            # 100 bytes every 0.1 s is 1000 bytes/s, half the minimum.
            while not answered and time.monotonic() - began < TIMEOUT:
                sock.sendall(b"1" * 100)
                try:
                    answered = bool(sock.recv(1, socket.MSG_PEEK))
                except socket.timeout:
                    pass
            seconds = time.monotonic() - began
            assert answered, "no answer while the body kept dripping"
            sock.settimeout(TIMEOUT)
            assert read_error(sock) == (408, "request_timeout")
    # Never before the 1 s grace; at 1000 bytes/s the body is behind by
    # it after about 2 s.
    assert 1.0 <= seconds < 4.0


def test_body_at_the_minimum_rate_or_faster_is_served(tmp_path):
    """A body that keeps up with the rate is read whole and answered."""
    settings = environment_settings(
        tmp_path, APP_MIN_BODY_RATE="500", APP_BODY_GRACE="1")
    body = json.dumps({"word": "trickle", "count": 7}).encode()
    body += b" " * (3000 - len(body))
    with RunningServer(settings) as running:
        with socket.create_connection(running.server.bind_addr[:2],
                                      timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /words HTTP/1.1\r\nHost: test\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body))
            # 1000 bytes/s for 3 s, twice the minimum.
            for offset in range(0, len(body), 100):
                sock.sendall(body[offset:offset + 100])
                time.sleep(0.1)
            response = http.client.HTTPResponse(sock)
            response.begin()
            assert response.status == 201, response.read()


def test_pipelined_requests_are_answered_in_order(tmp_path):
    """Requests sent back to back on one connection all get answers."""
    settings = environment_settings(tmp_path)
    body = b'{"word": "piped"}'
    requests = (b"POST /words HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                + b"GET /words/piped HTTP/1.1\r\nHost: test\r\n\r\n"
                + HEALTH)
    with RunningServer(settings) as running:
        with socket.create_connection(running.server.bind_addr[:2],
                                      timeout=TIMEOUT) as sock:
            sock.sendall(requests)
            # The last request asks to close, so the answers end there.
            answers = b"".join(iter(lambda: sock.recv(65536), b""))
    statuses = re.findall(rb"^HTTP/1\.1 (\d{3}) ", answers, re.MULTILINE)
    assert statuses == [b"201", b"200", b"200"]


def test_expect_100_continue_is_answered_before_the_body(tmp_path):
    """A client waiting for 100 Continue gets it once, then its answer."""
    settings = environment_settings(tmp_path)
    body = b'{"word": "patient"}'
    with RunningServer(settings) as running:
        with socket.create_connection(running.server.bind_addr[:2],
                                      timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /words HTTP/1.1\r\nHost: test\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Expect: 100-continue\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body))
            assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(body)
            assert sock.recv(12, socket.MSG_PEEK) == b"HTTP/1.1 201"
            response = http.client.HTTPResponse(sock)
            response.begin()
            assert response.status == 201, response.read()


def test_upload_that_finds_the_memory_budget_spent_waits_its_turn(
        tmp_path):
    """A body that does not fit the budget is read once another ends.

    With a 1 MiB budget, a first client holds most of it with a body
    still arriving; a second, sent whole, gets no answer while it waits
    unread, then both are served once the first body is complete.
    """
    settings = environment_settings(
        tmp_path, APP_MAX_BUFFERED_BYTES="1048576",
        APP_MAX_UPLOAD_BYTES="1048576", APP_MAX_IMAGE_BYTES="1048576")
    length = 900000

    def request(word):
        body = json.dumps({"word": word}).encode()
        return (b"POST /words HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % length
                + body + b" " * (length - len(body)))

    first, second = request("first"), request("second")
    with RunningServer(settings) as running:
        address = running.server.bind_addr[:2]
        with socket.create_connection(address, timeout=TIMEOUT) as holder, \
                socket.create_connection(address, timeout=1.0) as waiter:
            holder.sendall(first[:-100000])
            time.sleep(0.3)
            waiter.sendall(second)
            try:
                early = waiter.recv(12, socket.MSG_PEEK)
            except socket.timeout:
                early = None
            assert early is None, "answered while the budget was spent"
            holder.sendall(first[-100000:])
            waiter.settimeout(TIMEOUT)
            answers = []
            for sock in (holder, waiter):
                response = http.client.HTTPResponse(sock)
                response.begin()
                answers.append(response.status)
    assert answers == [201, 201]
