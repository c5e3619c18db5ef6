"""Measure what slow and idle clients do to the service, and what it costs.

Usage, from the project root with the project's virtualenv::

    python bench/slow_clients.py [--probes N] [--wrk-seconds S] [--rounds R]

It starts the service twice, each with its default settings and a
temporary SQLite file: ``python api.py`` as shipped, whose HTTP server
reads each request whole before a worker takes it, and the same
``api.py`` on cheroot's plain ``wsgi.Server`` (this script run with
``--serve-plain``), which hands a connection to a worker at once. Then:

1. throughput: ``wrk -t1 -c8`` on ``GET /health/live``, with keep-alive
   and with a new connection per request, the two servers taking turns
   for ``--rounds`` rounds (the machine's speed drifts; turns put the
   same drift on both sides); the median of each is reported;
2. the attack on each server in turn: 64 idle connections that send
   nothing, 16 header drippers (one byte a second) and 8 body drippers
   (``POST /words`` declaring 100000 bytes, sent at 10 KB/s), every
   attacker the server cuts off coming back at once; meanwhile
   ``GET /health/live`` is probed on new connections and the latencies
   reported (on the plain server, probing stops after 3 probes that get
   no answer, since each waits for its timeout).

The report goes to stdout as Markdown; it is a measurement, not a test:
``tests/test_slow_clients.py`` holds the read-ahead server to a bound.
"""

import argparse
import collections
import os
import pathlib
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

if not __package__:
    # Run as ``python bench/slow_clients.py``: make ``bench`` importable.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import servers, stripped  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
IDLE = 64
HEADER_DRIPPERS = 16
BODY_DRIPPERS = 8
BODY_LENGTH = 100000
# 10 KB/s as 1000-byte pieces ten times a second.
BODY_PIECE = 1000
BODY_PERIOD = 0.1
HEADER_PERIOD = 1.0
PROBE_TIMEOUT = 15.0
PROBE_PERIOD = 0.5
UNANSWERED_BEFORE_GIVING_UP = 3
HEAD = (b"GET /health/live HTTP/1.1\r\nHost: bench\r\n"
        b"Connection: close\r\n\r\n")
DRIP_HEAD = b"GET /health/live HTTP/1.1\r\nHost: bench\r\nX-Drip: "
BODY_HEAD = (b"POST /words HTTP/1.1\r\nHost: bench\r\n"
             b"Content-Type: application/json\r\n"
             b"Content-Length: %d\r\n\r\n" % BODY_LENGTH)
WRK_LEVELS = (("keep-alive", ()), ("new connection each",
                                   ("-H", "Connection: close")))


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=20,
                        help="health probes during the attack (default 20)")
    parser.add_argument("--wrk-seconds", type=int, default=5,
                        help="duration of each wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="wrk runs per server and level (default 5)")
    parser.add_argument("--serve-plain", action="store_true",
                        help="run api.py on cheroot's plain server (the "
                        "benchmark starts this itself)")
    return parser.parse_known_args(argv)


def serve_plain(argv):
    """Run api.py with its HTTP server swapped for cheroot's plain one.

    Everything else (settings, app, logging, signals) is api.py's own, so
    the two servers differ in the request intake alone.
    """
    sys.path.insert(0, str(ROOT))
    import api
    api.make_server = stripped.make_plain_server
    return api.main(argv)


class Attack:
    """Idle sockets and drippers, kept up by one thread until stopped."""

    def __init__(self, address):
        """Remember where to attack; nothing connects until :meth:`start`."""
        self.address = address
        self.answers = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        """Open every attacker and keep them sending."""
        self._thread.start()
        return self

    def stop(self):
        """Stop sending and close every socket."""
        self._stop.set()
        self._thread.join(10)

    def _connect(self):
        """Return a new non-blocking connection to the server."""
        sock = socket.create_connection(self.address, timeout=5)
        sock.setblocking(False)
        return sock

    def _run(self):
        """Send each dripper its next piece on time until stopped."""
        idle = [self._connect() for _ in range(IDLE)]
        drippers = [["header", self._connect(), 0.0, DRIP_HEAD]
                    for _ in range(HEADER_DRIPPERS)]
        drippers += [["body", self._connect(), 0.0, BODY_HEAD]
                     for _ in range(BODY_DRIPPERS)]
        try:
            while not self._stop.wait(BODY_PERIOD / 2):
                now = time.monotonic()
                for dripper in drippers:
                    self._step(dripper, now)
        finally:
            for sock in idle + [dripper[1] for dripper in drippers]:
                sock.close()

    def _step(self, dripper, now):
        """Send one dripper its next piece, reconnecting if it was cut."""
        kind, sock, due, first = dripper
        if now < due:
            return
        answer = self._answer(sock)
        if answer is not None:
            self.answers[f"{kind}: {answer}"] += 1
            sock.close()
            dripper[1] = sock = self._connect()
            dripper[3] = DRIP_HEAD if kind == "header" else BODY_HEAD
        piece = dripper[3] or (b"x" if kind == "header" else
                               b"1" * BODY_PIECE)
        dripper[3] = b""
        try:
            sock.send(piece)
        except OSError:
            pass
        dripper[2] = now + (HEADER_PERIOD if kind == "header"
                            else BODY_PERIOD)

    @staticmethod
    def _answer(sock):
        """Return the status line the server sent, "closed", or None."""
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return None
        except OSError as error:
            return type(error).__name__
        if not data:
            return "closed"
        return data.split(b"\r\n", 1)[0].decode("latin-1")


def probe(address):
    """Return the seconds one GET /health/live takes, None if unanswered."""
    began = time.monotonic()
    data = b""
    try:
        with socket.create_connection(address,
                                      timeout=PROBE_TIMEOUT) as sock:
            sock.sendall(HEAD)
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 200"):
        return None
    return time.monotonic() - began


def wrk_rate(address, seconds, options):
    """Return wrk's requests per second on GET /health/live."""
    url = f"http://{address[0]}:{address[1]}/health/live"
    result = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{seconds}s", *options, url],
        capture_output=True, text=True, check=True, timeout=seconds + 30)
    found = re.search(r"Requests/sec:\s+([0-9.]+)", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if not found or errors:
        raise RuntimeError(f"wrk failed:\n{result.stdout}")
    return float(found.group(1))


def attack(address, probes):
    """Probe the server under attack; return latencies and answers."""
    running = Attack(address).start()
    # Let every attacker connect and start sending first.
    time.sleep(2)
    latencies = []
    try:
        for _ in range(probes):
            latencies.append(probe(address))
            if (latencies[-UNANSWERED_BEFORE_GIVING_UP:]
                    == [None] * UNANSWERED_BEFORE_GIVING_UP):
                break
            time.sleep(PROBE_PERIOD)
    finally:
        running.stop()
    return latencies, running.answers


def describe_probes(latencies, probes):
    """Return a table cell summing up the probes' latencies."""
    answered = [latency for latency in latencies if latency is not None]
    cell = f"{len(answered)} of {len(latencies)} answered"
    if len(latencies) < probes:
        cell += " (gave up)"
    if answered:
        cell += (f"; median {statistics.median(answered) * 1000:.0f} ms, "
                 f"max {max(answered) * 1000:.0f} ms")
    return cell


def main(argv=None):
    """Run the measurement and print its report."""
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    if args.serve_plain:
        return serve_plain(rest)
    with tempfile.TemporaryDirectory() as folder:
        started = {}
        for name, script in (("plain", [__file__, "--serve-plain"]),
                             ("read-ahead", [str(ROOT / "api.py")])):
            env = servers.clean_environment(
                APP_SQLITE_PATH=os.path.join(folder, f"{name}.sqlite3"))
            started[name] = servers.ServerProcess(
                [sys.executable, *script, "--port", "0"],
                os.path.join(folder, f"{name}.log"), env=env,
                cwd=ROOT).start()
        try:
            rates = collections.defaultdict(list)
            for level, options in WRK_LEVELS:
                for turn in range(args.rounds):
                    order = sorted(started, reverse=bool(turn % 2))
                    for name in order:
                        rates[name, level].append(wrk_rate(
                            started[name].address, args.wrk_seconds,
                            options))
            under_attack = {name: attack(server.address, args.probes)
                            for name, server in started.items()}
        finally:
            for server in started.values():
                server.stop()
    print("| measurement | plain cheroot | read-ahead (shipped) |")
    print("|---|---|---|")
    for level, _ in WRK_LEVELS:
        cells = [f"{statistics.median(rates[name, level]):.0f} req/s"
                 for name in ("plain", "read-ahead")]
        print(f"| wrk -t1 -c8 /health/live, {level} (median of "
              f"{args.rounds}) | {cells[0]} | {cells[1]} |")
    cells = [describe_probes(under_attack[name][0], args.probes)
             for name in ("plain", "read-ahead")]
    print(f"| /health/live probes under attack ({IDLE} idle, "
          f"{HEADER_DRIPPERS} header and {BODY_DRIPPERS} body drippers; "
          f"{PROBE_TIMEOUT:.0f} s timeout) | {cells[0]} | {cells[1]} |")
    for name in ("plain", "read-ahead"):
        for answer, count in sorted(under_attack[name][1].items()):
            print(f"| {name}: attackers answered `{answer}` | {count} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
