"""The service as a user runs it: ``python api.py`` in its own process."""

import concurrent.futures
import signal
import subprocess
import sys
import time

import pytest
import requests

from app.settings import PROJECT_ROOT
from tests.conftest import DATA, TIMEOUT, Client, ServiceProcess

IN_FLIGHT = 6
BATCH = 16


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


def test_sigterm_lets_in_flight_requests_finish(tmp_path):
    """Requests being served when SIGTERM arrives all complete, then exit 0.

    Each request classifies a batch of 16 photos, so all six are still
    being served when the signal arrives a moment after they were sent.
    """
    photo = (DATA / "chelsea.jpg").read_bytes()
    files = [("image", (f"{number}.jpg", photo)) for number in range(BATCH)]

    def predict(url):
        return requests.post(url + "/predict/model/v1", files=files,
                             timeout=TIMEOUT)

    with ServiceProcess(sqlite_env(tmp_path)) as service:
        with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
            futures = [pool.submit(predict, service.url)
                       for _ in range(IN_FLIGHT)]
            time.sleep(0.3)
            started = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            responses = [future.result() for future in futures]
            assert service.process.wait(TIMEOUT) == 0
            stop_seconds = time.monotonic() - started
        assert [response.status_code for response in responses] == [
            200] * IN_FLIGHT
        assert all(len(response.json()["predictions"]) == BATCH
                   for response in responses)
        with pytest.raises(requests.ConnectionError):
            requests.get(service.url + "/health/live", timeout=TIMEOUT)
    assert stop_seconds < TIMEOUT


def test_command_line_options_override_settings(tmp_path):
    """Command-line options win over APP_ variables."""
    env = sqlite_env(tmp_path)
    env["APP_PORT"] = "1"  # would need root: proves --port wins
    with ServiceProcess(env, ("--port", "0", "--host", "127.0.0.1",
                              "--threads", "2")) as service:
        assert service.url.startswith("http://127.0.0.1:")
        assert service.stop() == 0


def test_invalid_setting_fails_at_start_naming_it(tmp_path):
    """api.py exits 2 with the bad setting named."""
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "api.py")],
        env={"APP_THREADS": "many", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "'threads'" in result.stderr
    assert "many" in result.stderr
