"""Generate HTTP load from processes separate from the server under test.

Clients run in their own processes so that they never compete with the
server for its GIL, and use only the standard library (``http.client``)
so that any server can be measured the same way. Each process runs a few
threads, each owning one keep-alive connection; all threads take request
tickets from one shared counter, so the concurrency stays constant until
the last request instead of fading as fixed shares run out.
"""

import collections
import dataclasses
import http.client
import multiprocessing
import os
import queue
import threading
import time

# A client waiting this long for one answer counts it as an error.
_SOCKET_TIMEOUT = 60.0
_START_TIMEOUT = 120.0


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

    @property
    def ok(self):
        """Return how many requests got a 2xx answer."""
        return len(self.latencies)

    @property
    def error_count(self):
        """Return how many requests failed or got a non-2xx answer."""
        return sum(self.errors.values())

    @property
    def rate(self):
        """Return successful requests per second."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, fraction):
        """Return a latency percentile in seconds (nearest rank)."""
        return percentile(self.latencies, fraction)


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
    Every connection first sends one untimed request, so connections,
    server threads and caches are warm when timing starts. No new
    request starts after ``time_limit`` seconds.
    """
    context = multiprocessing.get_context("spawn")
    processes = max(1, min(concurrency, os.cpu_count() or 1))
    shares = [concurrency // processes + (index < concurrency % processes)
              for index in range(processes)]
    tickets = context.Value("q", 0)
    start = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=_worker, daemon=True,
            args=(address, tuple(requests), share, tickets, total, start,
                  results, time_limit))
        for share in shares]
    try:
        for worker in workers:
            worker.start()
        start.wait(timeout=_START_TIMEOUT)
        parts = _collect(results, workers, time_limit + _SOCKET_TIMEOUT)
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
                worker.join()
    return _merge(parts, concurrency)


def _collect(results, workers, timeout):
    """Return one result per worker, failing if a worker died silently."""
    parts = []
    deadline = time.monotonic() + timeout
    while len(parts) < len(workers):
        try:
            parts.append(results.get(timeout=1.0))
        except queue.Empty:
            if time.monotonic() > deadline:
                raise TimeoutError("load workers did not finish") from None
            if not any(worker.is_alive() for worker in workers):
                raise RuntimeError("a load worker died without a result")
    return parts


def _merge(parts, concurrency):
    """Combine the workers' results into one LoadResult."""
    latencies = []
    errors = collections.Counter()
    for part in parts:
        latencies.extend(part["latencies"])
        errors.update(part["errors"])
    began = min(part["began"] for part in parts)
    ended = max(part["ended"] for part in parts)
    return LoadResult(
        concurrency=concurrency, seconds=max(ended - began, 1e-9),
        latencies=latencies, errors=errors,
        warm_ups=sum(part["warm_ups"] for part in parts),
        timed_out=any(part["timed_out"] for part in parts))


def _worker(address, requests, connections, tickets, total, start, results,
            time_limit):
    """Run one client process: warm up, wait for the others, then load."""
    host, port = address
    clients = [http.client.HTTPConnection(host, port,
                                          timeout=_SOCKET_TIMEOUT)
               for _ in range(connections)]
    warm_ups = sum(_send(client, requests[index % len(requests)]) is None
                   for index, client in enumerate(clients))
    start.wait(timeout=_START_TIMEOUT)
    began = time.monotonic()
    deadline = began + time_limit
    outcomes = [([], collections.Counter()) for _ in clients]
    threads = [
        threading.Thread(target=_client_loop,
                         args=(client, requests, tickets, total, deadline,
                               *outcome))
        for client, outcome in zip(clients, outcomes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = time.monotonic()
    for client in clients:
        client.close()
    latencies = [value for timings, _ in outcomes for value in timings]
    errors = collections.Counter()
    for _, counted in outcomes:
        errors.update(counted)
    results.put({"latencies": latencies, "errors": dict(errors),
                 "began": began, "ended": ended,
                 "warm_ups": warm_ups,
                 "timed_out": ended > deadline})


def _client_loop(client, requests, tickets, total, deadline, latencies,
                 errors):
    """Send requests on one connection until the tickets run out."""
    while time.monotonic() < deadline:
        ticket = _take_ticket(tickets, total)
        if ticket is None:
            return
        began = time.perf_counter()
        failure = _send(client, requests[ticket % len(requests)])
        if failure is None:
            latencies.append(time.perf_counter() - began)
        else:
            errors[failure] += 1


def _take_ticket(tickets, total):
    """Return the next request number, or None once all are taken."""
    with tickets.get_lock():
        ticket = tickets.value
        if ticket >= total:
            return None
        tickets.value = ticket + 1
        return ticket


def _send(client, request):
    """Send one request and read its answer; describe a failure, if any."""
    try:
        client.request(request.method, request.path, body=request.body,
                       headers=dict(request.headers))
        response = client.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as error:
        # http.client reconnects on the next request once closed.
        client.close()
        return type(error).__name__
    if 200 <= response.status < 300:
        return None
    return f"HTTP {response.status}"


def multipart_body(field, filename, data, content_type="image/jpeg"):
    """Return (body, content type) of a form with one file field."""
    # Lower case on purpose: the service takes the boundary from Bottle's
    # request.content_type, which Bottle lower-cases, so a mixed-case
    # boundary (as browsers send) would be answered 400 and measure
    # nothing but the error path.
    boundary = "benchboundary7ma4ywxktrzu0gw"
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode("ascii")
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    return head + data + tail, f"multipart/form-data; boundary={boundary}"
