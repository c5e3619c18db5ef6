"""A throw-away redis-server on a free loopback port, for store tests."""

import shutil
import socket
import subprocess
import time

import redis

STARTUP_TIMEOUT = 20


def free_port():
    """Return a TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """redis-server with append-only fsync on every write, in a folder."""

    def __init__(self, folder):
        """Start the server and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run "
                               "`apt-get install redis-server` (make test "
                               "does this when run as root)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(folder), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll():
                    self.stop()
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
        client.close()

    def stop(self):
        """Stop the server."""
        self.process.terminate()
        self.process.wait(STARTUP_TIMEOUT)
