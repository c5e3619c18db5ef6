"""The service as a user runs it: ``python api.py`` in its own process."""

import signal
import subprocess
import sys

from app.settings import PROJECT_ROOT
from tests.conftest import Client, ServiceProcess


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
