"""Fixtures that build on each other: settings, then service, then server."""

import functools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from app.assembly import Parts, build, build_keys, build_store
from app.models.bootstrap import load_registry
from app.models.loading import LoadOptions
from app.server import make_server, server_url
from app.settings import PROJECT_ROOT, load_settings
from app.web.application import make_app
from tests.redis_server import RedisServer

TIMEOUT = 10
MODEL_REPOSITORY = PROJECT_ROOT / "model"
DATA = PROJECT_ROOT / "tests" / "data"
STARTUP_TIMEOUT = 60


def make_settings(tmp_path, **overrides):
    """Return settings from setup.cfg with a private SQLite file and port 0."""
    values = {"sqlite_path": tmp_path / "words.sqlite3", "port": 0,
              "host": "127.0.0.1"}
    values.update(overrides)
    return load_settings(environ={}, overrides=values)


@functools.lru_cache(maxsize=None)
def shared_registry():
    """Return the shipped model, loaded once for every test server.

    A registry is read-only once loaded and lends its interpreters to one
    thread at a time, so servers of different tests may share it.
    """
    return load_registry(MODEL_REPOSITORY, options=LoadOptions(pool_size=2))


class RunningServer:
    """A real cheroot server on a free loopback port, in a thread.

    By default it serves the shared registry with a store of its own;
    ``registry`` serves another one, and ``assembled`` builds every part
    from the settings exactly as ``api.py`` does, registry included.
    """

    def __init__(self, settings, registry=None, assembled=False):
        """Build the service and bind the server (not serving yet)."""
        self.settings = settings
        if assembled:
            self.parts = build(settings)
        else:
            registry = registry or shared_registry()
            store = build_store(settings)
            self.parts = Parts(settings, store, registry, make_app(
                settings, store, registry, keys=build_keys(settings)))
        self._owns_registry = assembled
        self.server = make_server(self.parts.wsgi, settings)
        # cheroot notices a stop once per expiration interval (0.5 s by
        # default); a short one keeps hundreds of server starts quick.
        self.server.expiration_interval = 0.02
        self.url = server_url(self.server)
        self._thread = threading.Thread(target=self.server.serve,
                                        daemon=True)

    def __enter__(self):
        """Start serving."""
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        """Stop serving and release the store."""
        self.server.stop()
        self._thread.join(TIMEOUT)
        if self._owns_registry:
            self.parts.close()
        else:
            self.parts.store.close()


class Client(requests.Session):
    """A requests session bound to one base URL, always with a timeout."""

    def __init__(self, base_url):
        """Remember the base URL."""
        super().__init__()
        self.base_url = base_url

    def request(self, method, path, **kwargs):
        """Send a request to base URL + path."""
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, self.base_url + path, **kwargs)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Yield one redis-server for the whole run (tests use own prefixes)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def redis_settings(tmp_path, redis_server, **overrides):
    """Return settings for a Redis store with a prefix no other test uses."""
    return make_settings(tmp_path, store="redis", redis_url=redis_server.url,
                         redis_key_prefix=f"test-{uuid.uuid4().hex}:",
                         **overrides)


@pytest.fixture
def settings(tmp_path):
    """Return settings for one test: its own database file, a free port."""
    return make_settings(tmp_path)


@pytest.fixture
def server(settings):
    """Yield a running server for one test."""
    with RunningServer(settings) as running:
        yield running


@pytest.fixture
def client(server):
    """Yield an HTTP client talking to the test's server."""
    with Client(server.url) as session:
        yield session


class ServiceProcess:
    """``python api.py`` in a child process, as a user starts it."""

    def __init__(self, env_overrides, args=("--port", "0"),
                 stdout=subprocess.DEVNULL):
        """Start api.py with APP_ variables and wait for its URL.

        ``stdout`` receives the access log (a file to read it back).
        """
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("APP_")}
        # No drain unless a test asks for one: a stop takes no wait.
        env["APP_DRAIN_SECONDS"] = "0"
        env.update(env_overrides)
        self.process = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "api.py"), *args],
            cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=stdout, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.url = self._wait_for_url()

    def _wait_for_url(self):
        """Read the log until the "serving on URL" line, within a bound."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.log.append(line)
            match = re.search(r"serving on (http://\S+)", line)
            if match:
                self._drainer = threading.Thread(target=self._drain,
                                                 daemon=True)
                self._drainer.start()
                return match.group(1)
        self.process.kill()
        raise AssertionError("api.py did not start:\n" + "".join(self.log))

    def _drain(self):
        """Keep reading the log so the child never blocks on a full pipe."""
        for line in self.process.stderr:
            self.log.append(line)

    def stop(self, sig=signal.SIGTERM):
        """Send a signal and return the exit code, once the log is read."""
        self.process.send_signal(sig)
        code = self.process.wait(TIMEOUT)
        self._drainer.join(TIMEOUT)
        return code

    def __enter__(self):
        """Use as a context manager that always ends the child."""
        return self

    def __exit__(self, *exc_info):
        """Kill the child if a test left it running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT)
