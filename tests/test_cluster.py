"""The scaled-out service: nginx in front of replicas sharing one Redis.

Real processes only: redis-server, ``python api.py`` replicas and nginx,
started by :class:`deploy.cluster.Cluster` exactly as ``make cluster``
starts them. ``make test-cluster`` runs this file (``pytest -m
cluster``); the default run leaves it out (setup.cfg), because it takes
about a minute.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from app.settings import PROJECT_ROOT
from deploy.cluster import Cluster, free_port, start_front
from tests.conftest import DATA, TIMEOUT

pytestmark = pytest.mark.cluster

REPLICAS = 3
DRAIN_SECONDS = 2
PHOTO = (DATA / "chelsea.jpg").read_bytes()
# Requests a load thread sends at most, so that every loop is bounded
# even if the cluster answers far faster than expected.
MAX_REQUESTS_PER_THREAD = 5000


@pytest.fixture(scope="module")
def cluster():
    """Yield one cluster for the module; each test leaves it whole."""
    with Cluster(REPLICAS, settings_env={
            "APP_DRAIN_SECONDS": str(DRAIN_SECONDS),
            # The front is on loopback: believe its X-Forwarded-For.
            "APP_TRUSTED_PROXIES": "127.0.0.1/32"}) as running:
        yield running


def new_word():
    """Return a word no other test uses."""
    return "w" + uuid.uuid4().hex[:12]


def increment(session, url, word):
    """Send one PATCH increment; return the response."""
    return session.patch(f"{url}/words/{word}", json={"increment": 1},
                         timeout=TIMEOUT)


def predict(session, url):
    """Send one prediction of the test photo; return the response."""
    return session.post(f"{url}/predict/model",
                        files={"image": ("chelsea.jpg", PHOTO)},
                        timeout=TIMEOUT)


class Load:
    """Threads sending requests until stopped, every outcome recorded.

    ``senders`` are functions ``send(session)`` returning a response,
    one thread each. An outcome is ``(kind, sent at, answered at, status
    or exception name)``, times from ``time.monotonic``.
    """

    def __init__(self, senders):
        """Prepare one thread per sender; nothing is sent yet."""
        self.outcomes = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(kind, send))
            for kind, send in senders]

    def __enter__(self):
        """Start sending."""
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        """Stop sending and wait for every thread's last answer."""
        self._stop.set()
        for thread in self._threads:
            thread.join(TIMEOUT * 2)

    def _run(self, kind, send):
        """Send until stopped, recording each outcome."""
        with requests.Session() as session:
            for _ in range(MAX_REQUESTS_PER_THREAD):
                if self._stop.is_set():
                    break
                began = time.monotonic()
                try:
                    status = send(session).status_code
                except requests.RequestException as error:
                    status = type(error).__name__
                with self._lock:
                    self.outcomes.append((kind, began, time.monotonic(),
                                          status))

    def of(self, kind):
        """Return the outcomes of one kind of request."""
        with self._lock:
            return [outcome for outcome in self.outcomes
                    if outcome[0] == kind]

    def failures(self):
        """Return every outcome that is not a 2xx answer."""
        with self._lock:
            return [outcome for outcome in self.outcomes
                    if not (isinstance(outcome[3], int)
                            and 200 <= outcome[3] < 300)]


def count_of(url, word):
    """Return a word's count, read through ``url``."""
    response = requests.get(f"{url}/words/{word}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["count"]


def test_concurrent_increments_through_the_front_are_exact(cluster):
    """8 threads x 100 increments, spread over replicas, none lost."""
    word = new_word()
    url = cluster.front_url
    assert requests.post(f"{url}/words", json={"word": word},
                         timeout=TIMEOUT).status_code == 201
    threads, each = 8, 100

    def increment_many(results, index):
        with requests.Session() as session:
            results[index] = [increment(session, url, word).status_code
                              for _ in range(each)]

    results = [None] * threads
    workers = [threading.Thread(target=increment_many, args=(results, index))
               for index in range(threads)]
    began = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    seconds = time.monotonic() - began
    statuses = [status for result in results for status in result]
    assert statuses == [200] * threads * each
    assert count_of(url, word) == threads * each
    served = served_by(cluster, word)
    print(f"\n{threads * each} increments in {seconds:.2f} s "
          f"({threads * each / seconds:.0f}/s); per replica {served}")
    assert len(served) == REPLICAS and min(served.values()) > 0


def served_by(cluster, word):
    """Return how many requests for ``word`` each replica answered.

    The front's access log names the replica of every request.
    """
    counts = {}
    with open(cluster.front.log_path, encoding="utf-8") as log:
        for line in log:
            if f"/words/{word}" in line and '"upstream": "' in line:
                address = line.split('"upstream": "', 1)[1].split('"')[0]
                counts[address] = counts.get(address, 0) + 1
    return counts


def raw_exchange(port, data):
    """Send raw bytes to 127.0.0.1:port; return the status, headers, body."""
    address = ("127.0.0.1", port)
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                # nginx may reset rather than close once it has answered
                # a request whose body it will not read.
                if not answer:
                    raise
                break
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def assert_json_error(status, headers, body, expected_status, code):
    """Check one error nginx wrote itself, in the service's shape."""
    assert status == expected_status
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert len(headers["X-Request-ID"]) == 32
    assert json.loads(body)["error"]["code"] == code


def test_front_errors_are_json_in_the_service_shape(cluster, tmp_path):
    """Errors nginx writes itself (400, 404, 413, 502) are JSON."""
    port = cluster.front_port
    assert_json_error(*raw_exchange(port, b"NONSENSE\r\n\r\n"),
                      400, "bad_request")
    assert_json_error(*raw_exchange(
        port, b"POST /predict/model HTTP/1.1\r\nHost: front\r\n"
        b"Content-Length: 33554433\r\nConnection: close\r\n\r\n"),
        413, "payload_too_large")
    assert_json_error(*raw_exchange(
        port, b"GET /.front-error/502 HTTP/1.1\r\nHost: front\r\n"
        b"Connection: close\r\n\r\n"), 404, "not_found")
    # A front whose only replica is gone: 502 from nginx itself.
    front_port = free_port()
    front = start_front(tmp_path / "front", front_port,
                        [f"127.0.0.1:{free_port()}"], tmp_path / "front.log")
    try:
        assert_json_error(*raw_exchange(
            front_port, b"GET /words HTTP/1.1\r\nHost: front\r\n"
            b"Connection: close\r\n\r\n"), 502, "bad_gateway")
    finally:
        front.stop()


def test_front_passes_request_ids_and_the_client_address(cluster):
    """A sane X-Request-ID goes through; the replica sees who called."""
    request_id = "trace-" + uuid.uuid4().hex
    response = requests.get(f"{cluster.front_url}/health/live",
                            headers={"X-Request-ID": request_id,
                                     "X-Forwarded-For": "203.0.113.7"},
                            timeout=TIMEOUT)
    assert response.headers["X-Request-ID"] == request_id
    insane = requests.get(f"{cluster.front_url}/health/live",
                          headers={"X-Request-ID": "two words"},
                          timeout=TIMEOUT)
    assert re.fullmatch(r"[0-9a-f]{32}", insane.headers["X-Request-ID"])
    deadline = time.monotonic() + TIMEOUT
    while True:
        lines = [line for index in range(REPLICAS)
                 for line in cluster.replicas[index].log_tail(200000)
                 .splitlines() if request_id in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(lines) == 1, lines
    assert json.loads(lines[0])["client"] == "203.0.113.7"


def test_kill_9_of_a_replica_loses_no_acknowledged_write(cluster):
    """A replica killed under load: nginx routes around it at once."""
    word = new_word()
    url = cluster.front_url
    assert requests.post(f"{url}/words", json={"word": word},
                         timeout=TIMEOUT).status_code == 201
    senders = [("patch", lambda session: increment(session, url, word))
               for _ in range(8)]
    try:
        with Load(senders) as load:
            time.sleep(2)
            killed_at = time.monotonic()
            cluster.kill_replica(1)
            time.sleep(5)
        acknowledged = sum(1 for outcome in load.of("patch")
                           if outcome[3] == 200)
        failures = load.failures()
        final = count_of(url, word)
        late = [outcome for outcome in load.of("patch")
                if outcome[1] > killed_at + 1]
        last_failure = max((outcome[2] - killed_at for outcome in failures),
                           default=0)
        print(f"\nkill -9 under load: {len(load.outcomes)} requests, "
              f"{acknowledged} acknowledged, {len(failures)} failed "
              f"{sorted({str(outcome[3]) for outcome in failures})}, last "
              f"failure {last_failure:.3f} s after the kill; count {final}")
        # Every acknowledged increment is counted; an unacknowledged one
        # may or may not have been applied before its replica died.
        assert acknowledged <= final <= acknowledged + len(failures)
        assert all(outcome[1] >= killed_at - 0.5 for outcome in failures)
        assert last_failure < 3
        assert len(late) > 100 and all(outcome[3] == 200
                                       for outcome in late
                                       if outcome[1] > killed_at + 3)
    finally:
        cluster.start_replica(1)


def test_redis_down_fails_words_only_and_recovers(cluster):
    """Without Redis: word routes 503, predictions work, readiness says why.

    Redis comes back from its append-only file and the replicas use it
    again without a restart.
    """
    word = new_word()
    url = cluster.front_url
    assert requests.put(f"{url}/words/{word}", json={"count": 41},
                        timeout=TIMEOUT).status_code in (200, 201)
    cluster.stop_redis()
    try:
        with requests.Session() as session:
            for _ in range(10):
                response = session.get(f"{url}/words/{word}",
                                       timeout=TIMEOUT)
                assert response.status_code == 503
                assert response.json()["error"]["code"] == (
                    "store_unavailable")
                response = increment(session, url, word)
                assert response.status_code == 503
                assert response.json()["error"]["code"] == (
                    "store_unavailable")
                assert predict(session, url).status_code == 200
            ready = session.get(f"{url}/health/ready", timeout=TIMEOUT)
            assert ready.status_code == 503
            checks = ready.json()["checks"]
            assert checks["store"].startswith("failed")
            assert checks["model"] == "ok"
            for index in range(REPLICAS):
                direct = session.get(
                    f"{cluster.replica_url(index)}/health/ready",
                    timeout=TIMEOUT)
                assert direct.status_code == 503
                assert direct.json()["checks"]["store"].startswith("failed")
    finally:
        cluster.start_redis()
    restarted = time.monotonic()
    with requests.Session() as session:
        while True:
            response = session.get(f"{url}/words/{word}", timeout=TIMEOUT)
            if response.status_code == 200:
                break
            assert time.monotonic() - restarted < 10, response.text
            time.sleep(0.05)
        recovered = time.monotonic() - restarted
        assert response.json()["count"] == 41
        assert increment(session, url, word).json()["count"] == 42
        for index in range(REPLICAS):
            assert session.get(f"{cluster.replica_url(index)}/health/ready",
                               timeout=TIMEOUT).status_code == 200
    print(f"\nRedis back: words answer again {recovered:.3f} s after "
          "redis-server answered PING")


def test_rolling_restart_answers_no_request_with_an_error(cluster):
    """Restart each replica under load: every request answered 2xx.

    Each replica gets SIGTERM while the front keeps sending to it, as
    under Compose: it drains (APP_DRAIN_SECONDS=2), closes its port
    without resetting a connection queued on it, answers what it has,
    waits for the front to close its idle connections, and exits 0. The
    front sends what the closed port refuses to another replica. A new
    replica takes its place, and the next is stopped once the front
    sends requests to the new one, as an orchestrator waits for a new
    replica to be ready before it stops the next. No connection dropped,
    no error answer, no write lost or applied twice.
    """
    word = new_word()
    url = cluster.front_url
    assert requests.post(f"{url}/words", json={"word": word},
                         timeout=TIMEOUT).status_code == 201
    senders = [("patch", lambda session: increment(session, url, word))
               for _ in range(4)]
    senders += [("get", lambda session: session.get(
        f"{url}/words/{word}", timeout=TIMEOUT)) for _ in range(2)]
    senders += [("predict", lambda session: predict(session, url))
                for _ in range(2)]
    timings = []
    with Load(senders) as load:
        time.sleep(1)
        for index in range(REPLICAS):
            began = time.monotonic()
            code = cluster.stop_replica(index)
            stopped = time.monotonic()
            log_offset = os.path.getsize(cluster.front.log_path)
            cluster.start_replica(index)
            started = time.monotonic()
            wait_in_rotation(cluster, index, log_offset)
            timings.append((stopped - began, started - stopped,
                            time.monotonic() - started))
            assert code == 0, cluster.replicas[index].log_tail()
        time.sleep(1)
    failures = load.failures()
    acknowledged = sum(1 for outcome in load.of("patch")
                       if outcome[3] == 200)
    print(f"\nrolling restart: {len(load.outcomes)} requests "
          f"({len(load.of('predict'))} predictions), {len(failures)} failed "
          f"{sorted({str(outcome[3]) for outcome in failures})}; per "
          "replica, seconds to stop, start, be back in rotation: "
          + "; ".join(f"{stop:.1f}, {start:.1f}, {back:.1f}"
                      for stop, start, back in timings))
    assert failures == []
    assert count_of(url, word) == acknowledged


def wait_in_rotation(cluster, index, offset, timeout=30):
    """Wait until the front's log shows a request replica ``index`` served.

    Only log lines past ``offset`` count: those of the new replica.
    nginx tries again a replica whose port refused it after fail_timeout
    (5 s, deploy/nginx/upstream.conf), each of its workers on its own,
    and counts a failed try as one more failure.
    """
    address = f"127.0.0.1:{cluster.replica_ports[index]}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(cluster.front.log_path, encoding="utf-8") as log:
            log.seek(offset)
            for line in log:
                if ('"upstream": "' in line and '"status": 20' in line
                        and line.split('"upstream": "', 1)[1].split('"')[0]
                        .split(", ")[-1] == address):
                    return
        time.sleep(0.1)
    with open(cluster.front.log_path, encoding="utf-8") as log:
        log.seek(offset)
        seen = [line for line in log if address in line]
    raise AssertionError(f"replica {index} not back in rotation in "
                         f"{timeout} s; the front's lines about it:\n"
                         + "".join(seen[-10:]))


class SlowClients:
    """Idle connections and drippers of headers and bodies, kept up."""

    def __init__(self, address, idle, header_drippers, body_drippers):
        """Open every connection at once; drip from a thread until stopped."""
        self.idle = [self._connect(address) for _ in range(idle)]
        self.headers = [self._connect(address)
                        for _ in range(header_drippers)]
        self.bodies = [self._connect(address) for _ in range(body_drippers)]
        for sock in self.headers:
            sock.send(b"GET /health/live HTTP/1.1\r\nHost: front\r\nX-A: ")
        for sock in self.bodies:
            sock.send(b"POST /words HTTP/1.1\r\nHost: front\r\n"
                      b"Content-Type: application/json\r\n"
                      b"Content-Length: 100000\r\n\r\n")
        self.cut = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    @staticmethod
    def _connect(address):
        """Return a connected non-blocking socket."""
        sock = socket.create_connection(address, timeout=5)
        sock.setblocking(False)
        return sock

    def _drip(self):
        """Send each dripper a byte or a few every 0.2 s until stopped."""
        while not self._stop.wait(0.2):
            for sock, piece in ([(sock, b"a") for sock in self.headers]
                                + [(sock, b"1" * 50) for sock in self.bodies]):
                try:
                    sock.send(piece)
                except OSError:
                    self.cut += 1

    def close(self):
        """Stop dripping and close every connection."""
        self._stop.set()
        self._thread.join(5)
        for sock in self.idle + self.headers + self.bodies:
            sock.close()


def test_slow_clients_cost_the_front_not_the_service(cluster):
    """256 idle, 64 header and 64 body drippers: health answers in 1 s."""
    attack = SlowClients(("127.0.0.1", cluster.front_port), 256, 64, 64)
    latencies = []
    try:
        time.sleep(1)
        with requests.Session() as session:
            for _ in range(10):
                began = time.monotonic()
                response = session.get(f"{cluster.front_url}/health/live",
                                       timeout=1)
                latencies.append(time.monotonic() - began)
                assert response.status_code == 200
                time.sleep(0.2)
            fresh = []
            for _ in range(5):
                began = time.monotonic()
                response = requests.get(f"{cluster.front_url}/health/live",
                                        timeout=1)
                fresh.append(time.monotonic() - began)
                assert response.status_code == 200
            assert predict(session, cluster.front_url).status_code == 200
    finally:
        attack.close()
    print(f"\n/health/live through nginx under 384 slow clients: max "
          f"{max(latencies) * 1000:.1f} ms (kept connection), "
          f"{max(fresh) * 1000:.1f} ms (new connections); "
          f"{attack.cut} drips cut")
    assert max(latencies + fresh) < 1


def descendants(pid):
    """Return the ids of every process below ``pid``."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii",
                      errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(), [])
        found.extend(children)
        queue.extend(children)
    return found


def alive(pid):
    """Tell whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii",
                  errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Output:
    """Every line a child writes on stdout, read by a thread of its own."""

    def __init__(self, stream):
        """Start reading."""
        self.lines = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,),
                                        daemon=True)
        self._thread.start()

    def _read(self, stream):
        """Keep every line until the end of the stream."""
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, text, timeout):
        """Return the first line containing ``text``, None if none came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if text in line]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return None
                self._changed.wait(min(left, 0.5))

    def text(self):
        """Return everything read, once the stream has ended."""
        self._thread.join(TIMEOUT)
        return "".join(self.lines)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_make_cluster_stops_every_process_it_started(number):
    """``python -m deploy.cluster`` leaves no process behind on a signal."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("APP_")}
    env["APP_DRAIN_SECONDS"] = "0"
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.cluster", "--replicas", "2"],
        cwd=PROJECT_ROOT,
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    output = Output(process.stdout)
    try:
        logs = output.wait_for("logs: ", 120)
        assert logs is not None, output.text()
        port = int(output.wait_for("front: ", 0).rsplit(":", 1)[1])
        assert requests.get(f"http://127.0.0.1:{port}/health/ready",
                            timeout=TIMEOUT).status_code == 200
        started = descendants(process.pid)
        # redis-server, two replicas, nginx's master and its workers.
        assert len(started) >= 5, started
        process.send_signal(number)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
    output = output.text()
    assert process.returncode == 0, output
    assert "stopped" in output
    assert [pid for pid in started if alive(pid)] == []
    assert not os.path.exists(os.path.dirname(logs.split("logs: ", 1)[1]
                                              .strip()))
