"""Generate HTTP load with wrk, a C client, against a server under test.

Why wrk: the benchmark runs on a 2-core machine, where any load
generator takes CPU from the server it measures. Python clients
(``http.client`` in processes of their own) cost about 250 us of CPU
per request, more than some of the routes they measure, so the server
was starved by its own load and its figures understated. wrk is an
event-driven C client; with the script below it costs about 50 us per
request, most of it the kernel's loopback TCP, which any client pays.
Debian and Ubuntu ship it as the ``wrk`` package; this module is
written for wrk 4.1.0.

How a run works (``bench/load.lua`` is the wrk side):

- Every request of the mix is written, complete and raw (request line,
  ``Host``, ``Content-Length``, headers, body), to a file of its own in a
  temporary directory, which the script reads in wrk's ``init()``; so
  binary bodies never pass through a command line or shell quoting.
- wrk runs as many threads as connections, so that each thread owns one
  connection: its ``request()`` and ``response()`` calls then alternate,
  and a monotonic clock reading in each times that very request. wrk's
  own latency histogram is not used: before the script's ``done()``
  sees it, wrk 4.1.0 adds synthetic samples to it (a coordinated
  omission correction derived from the run's wall time), so its
  percentiles are not the latencies the requests had. The percentiles
  here are nearest-rank ones over the raw latencies, as for the
  in-process measurement.
- Warm-up: each connection first sends two untimed requests, so that
  connections, server threads and caches are warm when timing starts.
  It happens in the same wrk process as the timed requests, on the same
  connections, because wrk opens all its connections at once: a server
  with a short listen backlog (cheroot's is 5) drops some of them, and
  the SYN retransmissions (a second each) and resets that follow would
  otherwise fall into the timed part.
- Timing starts on all connections at once and keeps the concurrency
  constant until the last requests: this module hands out one ticket
  per timed request through a pipe, writing them only once every
  thread has said on stderr that it is warm; each thread takes a ticket
  (a blocking one-byte read) before each timed request, so ``total``
  requests are sent, exactly, whichever connections send them. A
  ticket's byte is the index of the request to send, so request i of
  the run is ``requests[i % n]``.
- The end: a thread that finds the pipe closed and empty says so and
  stops. wrk 4.1.0's main thread sleeps for the whole ``--duration``
  even when every thread has stopped, so once all have, wrk is
  interrupted (SIGINT, on which it reports at once); ``--duration`` is
  only a backstop. At ``time_limit`` the tickets not taken yet are
  taken back, so no request starts after it.

Errors: an answer outside 2xx counts as ``HTTP <status>`` (wrk itself
counts only statuses above 399, as ``errors.status``), one slower than
``TIMEOUT_SECONDS`` as ``timeout``, a request that wrk sent again after
losing its connection (wrk's read and write errors) as ``connection
lost``, and one still unanswered when wrk is stopped as ``unanswered``.
A connection lost five times in a row stops its thread: the server is
gone, and wrk would otherwise reconnect in a tight loop until the time
limit.
"""

import collections
import dataclasses
import json
import math
import os
import pathlib
import select
import shutil
import signal
import subprocess
import tempfile
import time

WRK_SCRIPT = pathlib.Path(__file__).with_name("load.lua")
# An answer slower than this counts as an error (wrk's --timeout).
TIMEOUT_SECONDS = 60
WARM_UP_REQUESTS_PER_CONNECTION = 2
# A ticket is one byte: the index of the request to send.
MAX_REQUEST_KINDS = 256
_WARM_UP_TIMEOUT = 120.0
_WARM_LINE = b"bench-load: thread warm"
_FINISHED_LINE = b"bench-load: thread finished"
# A SIGINT that reaches wrk before it installs its handler is ignored,
# so it is sent again until wrk exits.
_INTERRUPT_REPEAT_SECONDS = 0.1
_GRACE_SECONDS = 30.0
_TICKET_CHUNK = 65536


@dataclasses.dataclass(frozen=True)
class Request:
    """One HTTP request of the mix the clients send in turn."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple = ()


@dataclasses.dataclass
class LoadResult:
    """What one load run measured, as seen by the clients."""

    concurrency: int
    seconds: float
    latencies: list
    errors: collections.Counter
    warm_ups: int
    timed_out: bool
    warm_up_errors: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)

    @property
    def ok(self):
        """Return how many timed requests got a 2xx answer."""
        return len(self.latencies)

    @property
    def error_count(self):
        """Return how many timed requests failed or got a non-2xx answer."""
        return sum(self.errors.values())

    @property
    def rate(self):
        """Return successful requests per second."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, fraction):
        """Return a latency percentile in seconds (nearest rank)."""
        return percentile(self.latencies, fraction)


class WrkError(RuntimeError):
    """wrk is missing, failed, or could not warm its connections up."""


def percentile(values, fraction):
    """Return the nearest-rank percentile of values, NaN if there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run_load(address, requests, total, concurrency, time_limit=120.0):
    """Send ``total`` requests from ``concurrency`` connections; measure.

    ``requests`` are sent in turn (request i is ``requests[i % n]``).
    Every connection first sends two untimed requests; timing starts
    on all connections at once when all of these are answered. No new
    request starts after ``time_limit`` seconds of timing
    (``timed_out`` then). With fewer requests than connections, only
    ``total`` connections are opened.
    """
    if total < 1 or concurrency < 1:
        raise ValueError("total and concurrency must be positive")
    if not 1 <= len(requests) <= MAX_REQUEST_KINDS:
        raise ValueError(f"between 1 and {MAX_REQUEST_KINDS} requests to "
                         f"send in turn, not {len(requests)}")
    run = _WrkRun(wrk_executable(), address, total,
                  min(concurrency, total), time_limit)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        summary = run.run(pathlib.Path(scratch), requests)
    return _result(summary, concurrency, run.timed_out)


def combine_load_results(results):
    """Return one result for several runs at the same concurrency.

    Rates add up over the runs' timed seconds, so the pauses between
    runs (warm-ups, other measurements) count in none of them.
    """
    errors = collections.Counter()
    warm_up_errors = collections.Counter()
    for result in results:
        errors.update(result.errors)
        warm_up_errors.update(result.warm_up_errors)
    return LoadResult(
        concurrency=results[0].concurrency,
        seconds=sum(result.seconds for result in results),
        latencies=[value for result in results
                   for value in result.latencies],
        errors=errors,
        warm_ups=sum(result.warm_ups for result in results),
        timed_out=any(result.timed_out for result in results),
        warm_up_errors=warm_up_errors)


def wrk_executable():
    """Return the path of wrk, or raise saying how to install it."""
    found = shutil.which("wrk")
    if found is None:
        raise WrkError(
            "wrk is not installed; the benchmark's load generator is wrk "
            "4.1.0: apt-get install wrk (Debian/Ubuntu package wrk), or "
            "run make bench as root on Debian to have it installed")
    return found


def raw_request(request, address):
    """Return the complete bytes of one HTTP/1.1 request, body included."""
    names = {name.lower() for name, _ in request.headers}
    lines = [f"{request.method} {request.path} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {_authority(address)}")
    if "content-length" not in names and (
            request.body or request.method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {len(request.body)}")
    lines.extend(f"{name}: {value}" for name, value in request.headers)
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1") + request.body


def _authority(address):
    """Return ``host:port``, with an IPv6 host in brackets."""
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _WrkRun:
    """One wrk process: warm-up, tickets for the timed part, stop."""

    def __init__(self, executable, address, total, connections,
                 time_limit):
        """Describe the run; nothing starts until :meth:`run`."""
        self.executable = executable
        self.address = address
        self.total = total
        self.connections = connections
        self.time_limit = time_limit
        # Only a backstop: wrk is interrupted long before, unless this
        # process dies, and then wrk still ends on its own.
        self.duration = math.ceil(_WARM_UP_TIMEOUT + time_limit
                                  + TIMEOUT_SECONDS + _GRACE_SECONDS)
        self.timed_out = False
        self.complaints = []
        self.warm = 0
        self.finished = 0
        self.tickets_written = 0
        self.tickets_open = True

    def run(self, scratch, requests):
        """Run wrk to the end; return the script's summary."""
        request_files = []
        for index, request in enumerate(requests):
            path = scratch / f"request-{index}.http"
            path.write_bytes(raw_request(request, self.address))
            request_files.append(str(path))
        self.request_kinds = len(requests)
        summary_path = scratch / "summary.json"
        output_path = scratch / "wrk.out"
        argv = [self.executable, "--threads", str(self.connections),
                "--connections", str(self.connections),
                "--duration", f"{self.duration}s",
                "--timeout", f"{TIMEOUT_SECONDS}s",
                "--script", str(WRK_SCRIPT),
                f"http://{_authority(self.address)}/", "--", *request_files]
        self.tickets_read, self.tickets_write = os.pipe()
        os.set_blocking(self.tickets_write, False)
        env = dict(os.environ,
                   BENCH_LOAD_TICKETS_FD=str(self.tickets_read),
                   BENCH_LOAD_WARM_UPS=str(WARM_UP_REQUESTS_PER_CONNECTION),
                   BENCH_LOAD_TIMEOUT=str(TIMEOUT_SECONDS),
                   BENCH_LOAD_SUMMARY=str(summary_path))
        try:
            with open(output_path, "wb") as output:
                self.process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=output,
                    stderr=subprocess.PIPE, env=env,
                    pass_fds=(self.tickets_read,))
            self._supervise(argv)
        finally:
            self._stop_handing_out()
            os.close(self.tickets_read)
        if (self.complaints or self.process.returncode != 0
                or not summary_path.exists()):
            raise WrkError(
                f"wrk failed with {self.process.returncode}: {argv}\n"
                + "\n".join(self.complaints) + "\n"
                + output_path.read_text(errors="replace"))
        return json.loads(summary_path.read_text())

    def _supervise(self, argv):
        """Watch wrk until it exits; kill it if it outlives the backstop."""
        try:
            self._watch()
            self.process.wait(timeout=_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            raise WrkError(f"wrk did not exit: {argv}") from None
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.process.stderr.close()

    def _watch(self):
        """Read wrk's stderr until it exits, acting on what it says.

        Hand out the tickets once every thread is warm, take back those
        not taken by the time limit, and interrupt wrk once every thread
        has finished (or has had ``TIMEOUT_SECONDS`` to answer its last
        request).
        """
        started = time.monotonic()
        warm_deadline = started + _WARM_UP_TIMEOUT
        kill_deadline = started + self.duration + _GRACE_SECONDS
        timed_deadline = stop_deadline = interrupted_at = None
        stream = self.process.stderr.fileno()
        pending = b""
        while True:
            now = time.monotonic()
            if now >= kill_deadline:
                raise subprocess.TimeoutExpired(self.process.args, 0)
            if timed_deadline is None and stop_deadline is None:
                if self.warm >= self.connections:
                    timed_deadline = now + self.time_limit
                elif now >= warm_deadline:
                    self.complaints.append(
                        f"only {self.warm} of {self.connections} "
                        f"connections warmed up in {_WARM_UP_TIMEOUT:.0f} s")
                    self._stop_handing_out()
                    stop_deadline = now + _GRACE_SECONDS
            if stop_deadline is None and timed_deadline is not None:
                if now >= timed_deadline:
                    self.timed_out = self._stop_handing_out() > 0
                    stop_deadline = now + TIMEOUT_SECONDS + _GRACE_SECONDS
            if self.finished >= self.connections or (
                    stop_deadline is not None and now >= stop_deadline):
                if (interrupted_at is None or now - interrupted_at
                        >= _INTERRUPT_REPEAT_SECONDS):
                    self.process.send_signal(signal.SIGINT)
                    interrupted_at = now
            deadlines = [kill_deadline]
            deadlines += [moment for moment in (
                warm_deadline if timed_deadline is None else None,
                timed_deadline if stop_deadline is None else None,
                stop_deadline) if moment is not None]
            if interrupted_at is not None:
                deadlines.append(interrupted_at + _INTERRUPT_REPEAT_SECONDS)
            writing = (timed_deadline is not None and stop_deadline is None
                       and self.tickets_open)
            readable, writable, _ = select.select(
                [stream], [self.tickets_write] if writing else [], [],
                max(0.0, min(deadlines) - now))
            if writable:
                self._hand_out()
            if not readable:
                continue
            chunk = os.read(stream, 65536)
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line == _WARM_LINE:
                    self.warm += 1
                elif line == _FINISHED_LINE:
                    self.finished += 1
                else:
                    self.complaints.append(line.decode(errors="replace"))
            if self.complaints:
                # Anything else on stderr is an error of wrk or of the
                # script: nothing it measures is worth waiting for.
                self.process.kill()
                rest = pending + self.process.stderr.read()
                self.complaints.append(rest.decode(errors="replace"))
                return

    def _hand_out(self):
        """Write as many tickets as the pipe takes; close it after all."""
        count = min(self.total - self.tickets_written, _TICKET_CHUNK)
        first = self.tickets_written
        tickets = bytes((first + offset) % self.request_kinds
                        for offset in range(count))
        try:
            self.tickets_written += os.write(self.tickets_write, tickets)
        except BlockingIOError:
            return
        if self.tickets_written >= self.total:
            self._close_tickets()

    def _close_tickets(self):
        """Close the pipe's writing end: threads read what is left."""
        if self.tickets_open:
            self.tickets_open = False
            os.close(self.tickets_write)

    def _stop_handing_out(self):
        """Take back the tickets not taken; return how many were not."""
        self._close_tickets()
        taken_back = self.total - self.tickets_written
        self.tickets_written = self.total
        # With the writing end closed, a read returns at once: tickets
        # still in the pipe, or nothing once it is empty.
        while chunk := os.read(self.tickets_read, _TICKET_CHUNK):
            taken_back += len(chunk)
        return taken_back


def _result(summary, concurrency, timed_out):
    """Turn the script's summary of a run into a LoadResult."""
    threads = summary["threads"]
    latencies = [value for thread in threads
                 for value in thread["latencies"]]
    errors = collections.Counter()
    warm_up_errors = collections.Counter()
    for thread in threads:
        errors.update(thread["errors"])
        warm_up_errors.update(thread["warm_up_errors"])
        if thread["outstanding"]:
            kinds = errors if thread["timed"] else warm_up_errors
            kinds["unanswered"] += 1
    began = [thread["began"] for thread in threads
             if thread["began"] is not None]
    ended = [thread["ended"] for thread in threads
             if thread["ended"] is not None]
    seconds = max(ended) - min(began) if began and ended else 0.0
    return LoadResult(
        concurrency=concurrency, seconds=seconds, latencies=latencies,
        errors=errors,
        warm_ups=sum(thread["warm_ups_ok"] for thread in threads),
        timed_out=timed_out, warm_up_errors=warm_up_errors)


def multipart_body(field, filename, data, content_type="image/jpeg"):
    """Return (body, content type) of a form with one file field."""
    boundary = "benchboundary7ma4ywxktrzu0gw"
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode("ascii")
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    return head + data + tail, f"multipart/form-data; boundary={boundary}"
