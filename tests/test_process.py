"""The service as a user runs it: ``python api.py`` in its own process."""

import concurrent.futures
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from app.settings import PROJECT_ROOT, describe
from tests.canary import Canary, send_body
from tests.conftest import DATA, TIMEOUT, Client, ServiceProcess
from tests.test_predict_api import EGYPTIAN_MAU

IN_FLIGHT = 6


def sqlite_env(tmp_path):
    """Return APP_ variables giving the child its own database file."""
    return {"APP_SQLITE_PATH": str(tmp_path / "words.sqlite3")}


def test_port_zero_logs_the_picked_url_and_serves(tmp_path):
    """With --port 0 the log line gives the real port."""
    with ServiceProcess(sqlite_env(tmp_path)) as service:
        assert not service.url.endswith(":0")
        with Client(service.url) as client:
            assert client.get("/health/ready").status_code == 200
        assert service.stop() == 0


def test_acknowledged_writes_survive_kill_9(tmp_path):
    """Every acknowledged write is there after kill -9."""
    env = sqlite_env(tmp_path)
    with ServiceProcess(env) as service, Client(service.url) as client:
        for number in range(50):
            response = client.post("/words", json={
                "word": f"w{number}", "count": number})
            assert response.status_code == 201
        assert client.put("/words/w0", json={"count": 99}).ok
        assert client.patch("/words/w1", json={"increment": 5}).ok
        assert service.stop(signal.SIGKILL) == -signal.SIGKILL
    with ServiceProcess(env) as service, Client(service.url) as client:
        page = client.get("/words", params={"limit": 100}).json()
        counts = {item["word"]: item["count"] for item in page["words"]}
        expected = {f"w{number}": number for number in range(50)}
        expected.update(w0=99, w1=6)
        assert counts == expected
        assert service.stop() == 0


def test_sigterm_exits_zero_and_logs_stop(tmp_path):
    """SIGTERM stops the service cleanly with exit code 0."""
    with ServiceProcess(sqlite_env(tmp_path)) as service:
        assert service.stop(signal.SIGTERM) == 0
    assert any("stopped" in line for line in service.log)


def hold_then_send(release, body):
    """Return a canary route that answers ``body`` once ``release`` is set."""
    def route(handler):
        release.wait(TIMEOUT)
        send_body(body)(handler)
    return route


def test_sigterm_lets_in_flight_requests_finish(tmp_path):
    """Requests being served when SIGTERM arrives all complete, then exit 0.

    Each request asks the service to classify an image at a loopback URL
    whose server holds its answer: once that server has seen every
    request, all of them are inside the service, and they stay there
    until the answer is released, after the signal.
    """
    photo = (DATA / "chelsea.jpg").read_bytes()
    release = threading.Event()
    canary = Canary("127.0.0.1")
    canary.routes["/held.jpg"] = hold_then_send(release, photo)
    env = sqlite_env(tmp_path)
    env["APP_FETCH_ALLOW_PRIVATE"] = "true"  # the canary is on loopback
    # A worker thread for each request held, whatever the CPU count.
    env["APP_THREADS"] = str(IN_FLIGHT)
    body = {"instances": [{"url": f"http://127.0.0.1:{canary.port}"
                                  "/held.jpg"}]}

    def predict(url):
        return requests.post(url + "/predict/model/v1", json=body,
                             timeout=TIMEOUT)

    try:
        with ServiceProcess(env) as service:
            with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
                futures = [pool.submit(predict, service.url)
                           for _ in range(IN_FLIGHT)]
                deadline = time.monotonic() + TIMEOUT
                while (len(canary.requests) < IN_FLIGHT
                       and time.monotonic() < deadline):
                    time.sleep(0.01)
                assert len(canary.requests) == IN_FLIGHT
                started = time.monotonic()
                service.process.send_signal(signal.SIGTERM)
                time.sleep(0.3)
                assert not any(future.done() for future in futures)
                release.set()
                responses = [future.result() for future in futures]
                assert service.process.wait(TIMEOUT) == 0
                stop_seconds = time.monotonic() - started
            assert [response.status_code for response in responses] == [
                200] * IN_FLIGHT
            assert all(response.json()["predictions"][0]["classes"][0][
                "index"] == EGYPTIAN_MAU for response in responses)
            with pytest.raises(requests.ConnectionError):
                requests.get(service.url + "/health/live", timeout=TIMEOUT)
    finally:
        release.set()
        canary.close()
    assert stop_seconds < TIMEOUT


def test_command_line_options_override_settings(tmp_path):
    """Command-line options win over APP_ variables, each of them."""
    env = sqlite_env(tmp_path)
    env.update(APP_HOST="::1", APP_THREADS="5")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        # A port that is taken: serving at all proves --port won.
        env["APP_PORT"] = str(busy.getsockname()[1])
        with ServiceProcess(env, ("--port", "0", "--host", "127.0.0.1",
                                  "--threads", "2")) as service:
            assert service.url.startswith("http://127.0.0.1:")
            assert service.url != f"http://127.0.0.1:{env['APP_PORT']}"
            assert any("with 2 threads" in line for line in service.log)
            assert service.stop() == 0


def test_busy_port_fails_at_once_naming_the_setting(tmp_path):
    """A port in use ends the start with exit 2, before any model loads."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(PROJECT_ROOT / "api.py")],
            env={**sqlite_env(tmp_path), "APP_PORT": str(port),
                 "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr and "APP_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert "loaded model" not in result.stderr


def test_help_lists_every_setting():
    """api.py --help names each setting with its default."""
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "api.py"), "--help"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for name, _, default, _ in describe():
        assert f"  {name} (" in result.stdout, name
        assert f"default {default})" in result.stdout, name


def test_invalid_setting_fails_at_start_naming_it(tmp_path):
    """api.py exits 2 with the bad setting named."""
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "api.py")],
        env={"APP_THREADS": "many", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "'threads'" in result.stderr
    assert "many" in result.stderr
