"""Run the scaled-out service on this machine: Redis, replicas and nginx.

Usage, from the project root with the project's virtualenv::

    python -m deploy.cluster [--replicas N] [--port PORT]

It starts redis-server (append-only file on, data in a temporary folder),
N ``python api.py`` replicas on free loopback ports sharing it
(``APP_STORE=redis``), and nginx in front of them, configured from the
shipped template (deploy/nginx/), the topology compose.yaml describes.
Once every replica is ready it prints ``front: http://127.0.0.1:PORT``
and runs until SIGINT or SIGTERM, then stops every process it started:
the front and the replicas (each drains and finishes its requests), then
Redis. ``APP_*`` variables of the caller's environment reach the
replicas. The tests (tests/test_cluster.py) use the same
:class:`Cluster`.
"""

import argparse
import http.client
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from deploy.nginx_config import write_config

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
READY_TIMEOUT = 90.0
POLL_SECONDS = 0.05
# A replica given SIGTERM drains (drain_seconds, 5 by default) and then
# finishes its requests (shutdown_timeout, 10): it gets that and a margin
# before it is killed.
REPLICA_STOP_SECONDS = 30.0
STOP_SECONDS = 15.0
# The cluster's choice for Redis, as in compose.yaml: an acknowledged
# write is on disk, as with the SQLite store.
APPENDFSYNC = "always"


class ClusterError(RuntimeError):
    """A process of the cluster did not start or stopped on its own."""


def free_port():
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_status(port, path, timeout=2.0):
    """Return the status of ``GET path`` on 127.0.0.1:port, None if none."""
    connection = http.client.HTTPConnection("127.0.0.1", port,
                                            timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


class Child:
    """One process of the cluster, its output in a log file."""

    def __init__(self, name, argv, log_path, env=None):
        """Start the process in a session of its own.

        Its own session keeps a terminal's Ctrl-C away from it: the
        cluster receives that and stops its processes in order.
        """
        self.name = name
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=env, cwd=PROJECT_ROOT, start_new_session=True)

    @property
    def pid(self):
        """Return the process id."""
        return self.process.pid

    def running(self):
        """Tell whether the process is still running."""
        return self.process.poll() is None

    def check(self):
        """Raise ClusterError if the process has exited."""
        if not self.running():
            raise ClusterError(
                f"{self.name} exited with {self.process.returncode}:\n"
                f"{self.log_tail()}")

    def log_tail(self, size=3000):
        """Return the end of the process's log."""
        with open(self.log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - size))
            return log.read().decode("utf-8", "replace")

    def send(self, number):
        """Send a signal if the process still runs."""
        if self.running():
            self.process.send_signal(number)

    def wait(self, timeout):
        """Wait for the exit; return the exit code, None if still running."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, number=signal.SIGTERM, timeout=STOP_SECONDS):
        """Signal the process, and kill it if it outlives ``timeout``."""
        self.send(number)
        return self.finish(timeout)

    def finish(self, timeout=STOP_SECONDS):
        """Wait for the exit, killing the process after ``timeout``."""
        code = self.wait(timeout)
        if code is None:
            self.process.kill()
            code = self.process.wait()
        return code


class Cluster:
    """Redis, replicas of ``python api.py`` and nginx, on loopback ports."""

    def __init__(self, replicas=3, front_port=0, settings_env=None,
                 appendfsync=APPENDFSYNC):
        """Describe the cluster; nothing starts until :meth:`start`.

        ``settings_env`` holds ``APP_*`` variables for every replica;
        the cluster sets the store, host and port itself.
        """
        if replicas < 1:
            raise ValueError("a cluster needs at least one replica")
        self.replica_count = replicas
        self.front_port = front_port or free_port()
        self.settings_env = dict(settings_env or {})
        self.appendfsync = appendfsync
        self.folder = None
        self.redis = None
        self.redis_port = free_port()
        self.replica_ports = [free_port() for _ in range(replicas)]
        self.replicas = [None] * replicas
        self.front = None
        self._generations = [0] * replicas

    @property
    def front_url(self):
        """Return the URL of the nginx front."""
        return f"http://127.0.0.1:{self.front_port}"

    @property
    def redis_url(self):
        """Return the URL of the cluster's Redis."""
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def replica_url(self, index):
        """Return the URL of one replica."""
        return f"http://127.0.0.1:{self.replica_ports[index]}"

    def children(self):
        """Return every process of the cluster that was started."""
        return [child for child in (self.front, *self.replicas, self.redis)
                if child is not None]

    def start(self):
        """Start Redis, the replicas and the front; wait until all serve."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        """Start every process in order, each once the one before serves."""
        # nginx's workers run as an unprivileged user when nginx starts
        # as root, and write request bodies under this folder: it must be
        # one they can enter (tempfile makes it 0700).
        self.folder = pathlib.Path(tempfile.mkdtemp(
            prefix="wordcount-cluster-"))
        self.folder.chmod(0o755)
        (self.folder / "redis").mkdir()
        (self.folder / "logs").mkdir()
        self.start_redis()
        for index in range(self.replica_count):
            self.start_replica(index, wait=False)
        for index in range(self.replica_count):
            self.wait_ready(index)
        self.start_front()

    def start_redis(self):
        """Start redis-server on its port, replaying its append-only file."""
        binary = require_program("redis-server", "redis-server")
        self.redis = Child(
            "redis-server",
            [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--dir", str(self.folder / "redis"), "--save", "",
             "--appendonly", "yes", "--appendfsync", self.appendfsync,
             "--daemonize", "no"],
            self.folder / "logs" / "redis.log")
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._redis_answers():
            self.redis.check()
            if time.monotonic() > deadline:
                raise ClusterError("redis-server did not answer PING")
            time.sleep(POLL_SECONDS)

    def stop_redis(self):
        """Stop redis-server (it writes its append-only file first)."""
        if self.redis is not None:
            self.redis.stop()

    def _redis_answers(self):
        """Tell whether Redis answers PING, without a Redis client."""
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port),
                                          timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start_replica(self, index, wait=True):
        """Start replica ``index`` on its port; by default wait until ready.

        A replica started again takes the same port, as a restarted
        container keeps its address: the front needs no new configuration,
        and sends it requests again once it answers.
        """
        self._generations[index] += 1
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("APP_")}
        env.update(self.settings_env)
        env.update(APP_STORE="redis", APP_REDIS_URL=self.redis_url,
                   APP_HOST="127.0.0.1",
                   APP_PORT=str(self.replica_ports[index]),
                   PYTHONDONTWRITEBYTECODE="1")
        name = f"replica-{index}"
        self.replicas[index] = Child(
            name, [sys.executable, str(PROJECT_ROOT / "api.py")],
            self.folder / "logs" / f"{name}.{self._generations[index]}.log",
            env=env)
        if wait:
            self.wait_ready(index)
        return self.replicas[index]

    def wait_ready(self, index, timeout=READY_TIMEOUT):
        """Wait until replica ``index`` answers 200 on /health/ready."""
        replica = self.replicas[index]
        deadline = time.monotonic() + timeout
        while http_status(self.replica_ports[index], "/health/ready") != 200:
            replica.check()
            if time.monotonic() > deadline:
                raise ClusterError(f"{replica.name} not ready in {timeout} s:"
                                   f"\n{replica.log_tail()}")
            time.sleep(POLL_SECONDS)

    def kill_replica(self, index):
        """Kill replica ``index`` at once (SIGKILL), as a crash would."""
        replica = self.replicas[index]
        replica.process.kill()
        replica.process.wait()

    def stop_replica(self, index, timeout=REPLICA_STOP_SECONDS):
        """Stop replica ``index`` (SIGTERM); return its exit code.

        The front is not told: open-source nginx reads no readiness, and
        learns that a replica is gone when its port refuses connections,
        then sends the request to another replica whatever its method,
        as nothing of it was sent. The replica drains, closes its port
        without resetting a connection queued on it, and answers every
        request it has (app/server.py), as it does under Compose.
        """
        return self.replicas[index].stop(signal.SIGTERM, timeout)

    def start_front(self):
        """Start nginx in front of the replicas; wait until it serves."""
        self.front = start_front(
            self.folder / "nginx", self.front_port,
            [f"127.0.0.1:{port}" for port in self.replica_ports],
            self.folder / "logs" / "nginx.log")

    def stop(self):
        """Stop every process started and remove the cluster's folder.

        The front and the replicas get their signal together, so that
        the replicas drain while nginx finishes what it is proxying
        (SIGQUIT); Redis stops last, once no replica uses it.
        """
        stopping = [(self.front, signal.SIGQUIT, STOP_SECONDS)] + [
            (replica, signal.SIGTERM, REPLICA_STOP_SECONDS)
            for replica in self.replicas]
        stopping = [entry for entry in stopping if entry[0] is not None]
        for child, number, _ in stopping:
            child.send(number)
        for child, _, timeout in stopping:
            child.finish(timeout)
        if self.redis is not None:
            self.redis.stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self):
        """Start the cluster."""
        return self.start()

    def __exit__(self, *exc_info):
        """Stop the cluster, whatever happened."""
        self.stop()


def require_program(program, package):
    """Return the path of a program, or raise saying how to install it."""
    # Debian puts nginx in /usr/sbin, which only root has on its PATH.
    found = (shutil.which(program)
             or shutil.which(program, path="/usr/sbin:/sbin"))
    if found is None:
        raise ClusterError(f"{program} is not installed: apt-get install "
                           f"{package} (make cluster does it as root)")
    return found


def start_front(prefix, port, addresses, log_path):
    """Start nginx on 127.0.0.1:port in front of ``addresses``.

    Its configuration is rendered from the shipped template into
    ``prefix``, which holds its pid file and temporary files too. Return
    the running :class:`Child` once nginx answers HTTP.
    """
    binary = require_program("nginx", "nginx")
    conf = write_config(pathlib.Path(prefix) / "conf", f"127.0.0.1:{port}",
                        addresses)
    front = Child("nginx", [binary, "-e", "stderr", "-p", f"{prefix}/",
                            "-c", str(conf), "-g", "daemon off;"],
                  log_path)
    deadline = time.monotonic() + READY_TIMEOUT
    while http_status(port, "/health/live") is None:
        try:
            front.check()
            if time.monotonic() > deadline:
                raise ClusterError("nginx did not answer:\n"
                                   + front.log_tail())
        except ClusterError:
            front.stop()
            raise
        time.sleep(POLL_SECONDS)
    return front


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3,
                        help="service replicas behind the front (default 3)")
    parser.add_argument("--port", type=int, default=0,
                        help="the front's port on 127.0.0.1 (default: a "
                        "free one)")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the cluster until SIGINT or SIGTERM; return the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    stopping = []

    def request_stop(number, frame):
        stopping.append(number)
        raise KeyboardInterrupt

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, request_stop)
    settings_env = {key: value for key, value in os.environ.items()
                    if key.startswith("APP_")}
    cluster = Cluster(args.replicas, args.port, settings_env)
    try:
        cluster.start()
        print(f"front: {cluster.front_url}", flush=True)
        for index in range(cluster.replica_count):
            print(f"replica {index}: {cluster.replica_url(index)}",
                  flush=True)
        print(f"redis: {cluster.redis_url}", flush=True)
        print(f"logs: {cluster.folder / 'logs'}", flush=True)
        while True:
            for child in cluster.children():
                child.check()
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        # A second signal must not cut the stop short.
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
        cluster.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
