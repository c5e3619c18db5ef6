"""Start and stop the servers under test as child processes.

Every server script here (``api.py``, ``bench/naive_app.py``,
``bench/hello_app.py``) takes ``--port 0`` and logs ``serving on
http://HOST:PORT`` on stderr once it accepts connections. A server's
stderr goes to a file rather than a pipe, so that a chatty server can
never block on a full pipe while it is being measured.
"""

import os
import re
import signal
import statistics
import subprocess
import sys
import time

_SERVING = re.compile(r"serving on http://([0-9.]+):(\d+)")
_POLL_SECONDS = 0.005
_STOP_SECONDS = 15.0


class ServerError(RuntimeError):
    """A server did not start, or stopped on its own."""


class ServerProcess:
    """One server run as a child process; a context manager stops it."""

    def __init__(self, argv, log_path, env=None, cwd=None):
        """Describe the command; nothing runs until :meth:`start`."""
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.process = None
        self.started_at = None
        self.address = None

    @property
    def pid(self):
        """Return the server's process id."""
        return self.process.pid

    def start(self, timeout=120.0):
        """Start the server and return once it logs its address."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        """Start the process and wait for its ``serving on`` line."""
        with open(self.log_path, "wb") as log:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log, env=self.env,
                cwd=self.cwd)
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            found = _SERVING.search(self.log())
            if found:
                self.address = (found.group(1), int(found.group(2)))
                return self
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.argv} exited with {self.process.returncode}:\n"
                    f"{self.log()[-2000:]}")
            time.sleep(_POLL_SECONDS)
        raise ServerError(f"{self.argv} did not start in {timeout} s")

    def log(self):
        """Return what the server has written to stderr so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()

    def check_alive(self):
        """Raise if the server has stopped on its own."""
        if self.process.poll() is not None:
            raise ServerError(
                f"{self.argv} stopped with {self.process.returncode}:\n"
                f"{self.log()[-2000:]}")

    def rss_bytes(self):
        """Return the server's resident set size (VmRSS) in bytes."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise ServerError(f"no VmRSS for process {self.pid}")

    def stop(self):
        """Stop the server: SIGTERM, then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        """Start the server if it is not running yet."""
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc_info):
        """Stop the server, whatever happened in the with-block."""
        self.stop()


def clean_environment(**settings):
    """Return os.environ without APP_ variables, plus the given ones.

    Leftover ``APP_`` variables of the shell would change what is
    measured, so every server gets the committed defaults and only the
    settings the benchmark chooses.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("APP_")}
    env.update(settings)
    return env


def compile_bytecode(root, paths):
    """Compile the project's modules to bytecode, as its image does.

    pip compiles every installed package at install time, but the
    project's own modules are compiled on import, and not even cached
    where ``PYTHONDONTWRITEBYTECODE`` is set. The Dockerfile compiles
    them when it builds the image; so does this, so that a start
    measured here is the start of the service as it is deployed.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", *paths],
                   check=True, cwd=root, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL)


def time_imports(modules, repeat=3):
    """Return the median wall time of a fresh Python importing modules.

    One untimed run comes first so that every timed run finds the files
    in the page cache, as a server starting after them would.
    """
    argv = [sys.executable, "-c", f"import {', '.join(modules)}"]
    timings = []
    for attempt in range(repeat + 1):
        began = time.monotonic()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        if attempt:
            timings.append(time.monotonic() - began)
    return statistics.median(timings)
