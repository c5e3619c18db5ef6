"""Run the whole benchmark once and print its Markdown report.

Usage, from the project root with the project's virtualenv::

    python -m bench [--quick] [--requests N] [--rss-predictions N]
    python bench/run.py ...

Steps, all in one run so that every ratio compares figures measured
minutes apart on the same machine: the import time of the runtime
packages; the in-process limit of the prediction pipeline; the service
(``api.py``) started with a temporary SQLite file, its start time, its
prediction throughput and latency at several concurrencies, its memory
over many predictions and its word routes; a bare cheroot app; and a
naive tutorial-style model server. Progress goes to stderr, the report
to stdout.
"""

import argparse
import http.client
import json
import math
import os
import pathlib
import signal
import sys
import tempfile
import time

if not __package__:
    # Run as ``python bench/run.py``: make ``bench`` and ``app`` importable.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import machine, report, servers  # noqa: E402
from bench.inprocess import measure_pipeline  # noqa: E402
from bench.load import Request, multipart_body, run_load  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHOTOS = ("chelsea.jpg", "astronaut.jpg")
CONCURRENCIES = (1, 8, 32)
WORD = "benchmark"
IMPORTS = ("numpy", "PIL", "ai_edge_litert")
# The service's default worker thread count (setup.cfg), given to the
# bare cheroot app too so that both run the same server configuration.
SERVICE_THREADS = 8


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="about one minute: fewer requests everywhere")
    parser.add_argument("--requests", type=int,
                        help="prediction requests per load level "
                        "(default 1000, 150 with --quick); word and hello "
                        "levels send 4 times as many")
    parser.add_argument("--rss-predictions", type=int,
                        help="predictions between the two RSS readings "
                        "(default 10000, 1000 with --quick)")
    parser.add_argument("--no-v2", action="store_true",
                        help="measure model version 1 only")
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="seconds after which a load level stops "
                        "starting requests (default 120)")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 150 if args.quick else 1000
    if args.rss_predictions is None:
        args.rss_predictions = 1000 if args.quick else 10000
    if args.requests < 1 or args.rss_predictions < 1:
        parser.error("--requests and --rss-predictions must be positive")
    return args


def main(argv=None):
    """Run every measurement, print the report; return the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM becomes SystemExit, so the finally blocks stop the servers.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    bench = Benchmark(args)
    try:
        bench.run()
    except KeyboardInterrupt:
        print("interrupted; every server was stopped", file=sys.stderr)
        return 130
    print(bench.render())
    return 0


def _exit_on_signal(number, frame):
    """Turn a termination signal into an exception that unwinds."""
    raise SystemExit(128 + number)


class Benchmark:
    """The measurements of one run and the order they are taken in."""

    def __init__(self, args):
        """Read the photos; nothing is measured yet."""
        self.args = args
        self.versions = (1,) if args.no_v2 else (1, 2)
        self.photos = [(ROOT / "tests" / "data" / name).read_bytes()
                       for name in PHOTOS]
        self.began = time.monotonic()
        self.load_rows = []
        self.value_rows = []
        self.notes = []
        self.figures = {}

    def run(self):
        """Take every measurement, stopping each server after its part."""
        busy, own = machine.busy_cpu_seconds(), machine.own_cpu_seconds()
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            self.scratch = pathlib.Path(scratch)
            self.measure_imports()
            self.measure_in_process()
            self.measure_service()
            self.measure_hello()
            self.measure_naive()
        self.figures["total"] = time.monotonic() - self.began
        # Every child has been reaped by now, so own CPU time is complete
        # and the rest of the machine's busy time belongs to others.
        others = ((machine.busy_cpu_seconds() - busy)
                  - (machine.own_cpu_seconds() - own))
        self.figures["others"] = max(0.0, others) / (
            self.figures["total"] * (os.cpu_count() or 1))

    def progress(self, message):
        """Show progress on stderr, so stdout holds only the report."""
        elapsed = time.monotonic() - self.began
        print(f"[{elapsed:5.0f} s] {message}", file=sys.stderr, flush=True)

    def measure_imports(self):
        """Time a bare import of the runtime packages in a new process."""
        seconds = servers.time_imports(IMPORTS)
        self.figures["import"] = seconds
        self.value_rows.append(report.ValueRow(
            f"`python -c \"import {', '.join(IMPORTS)}\"`", "", seconds,
            "s"))
        self.progress(f"imports: {seconds:.2f} s")

    def measure_in_process(self):
        """Measure the pipeline in this process, at 1 and N threads."""
        single = 60 if self.args.quick else 300
        parallel = 120 if self.args.quick else 600
        results = measure_pipeline(self.photos, self.versions, single,
                                   parallel)
        self.tops = {}
        for version, (one, many, tops) in results.items():
            self.tops[version] = tops
            limit = f"in-process v{version}, {many.threads} threads"
            for result, name, ref in (
                    (one, f"in-process v{version}, 1 thread", limit),
                    (many, limit, "")):
                self.load_rows.append(report.LoadRow(
                    name, ref, result.rate, result.percentile(0.5),
                    result.percentile(0.99)))
                self.progress(f"{name}: {result.rate:.1f} images/s")
            self.figures[("inproc", version, 1)] = one
            self.figures[("inproc", version, "limit")] = many

    def measure_service(self):
        """Start api.py; measure its start, predictions, RSS and words."""
        env = servers.clean_environment(
            APP_SQLITE_PATH=str(self.scratch / "words.sqlite3"))
        server = servers.ServerProcess(
            [sys.executable, "api.py", "--port", "0"],
            self.scratch / "api.log", env=env, cwd=ROOT)
        with server.start():
            first = self._first_prediction(server)
            self.figures["start"] = first
            self.value_rows.append(report.ValueRow(
                "service: start to first prediction",
                self.value_rows[0].name, first, "s"))
            self.progress(f"service start to first prediction: {first:.2f}")
            rss_first = server.rss_bytes()
            predictions = 1
            for version in self.versions:
                self._check_top1(server.address, version, "service")
                for concurrency in CONCURRENCIES:
                    result = self._load(
                        server, f"service v{version}, c={concurrency}",
                        self._inproc_ref(version, concurrency),
                        self._predict_requests(version), self.args.requests,
                        concurrency)
                    predictions += result.ok + result.warm_ups
                    self.figures[("service", version, concurrency)] = result
            rss_warm, warm_count = server.rss_bytes(), predictions
            remaining = self.args.rss_predictions + 1 - predictions
            if remaining > 0:
                result = self._load(
                    server, f"service v1, c=8, to reach "
                    f"{self.args.rss_predictions} predictions",
                    self._inproc_ref(1, 8), self._predict_requests(1),
                    remaining, 8)
                predictions += result.ok + result.warm_ups
            rss_last = server.rss_bytes()
            self._rss_rows(rss_first, rss_warm, warm_count, rss_last,
                           predictions)
            self._measure_words(server)
            server.check_alive()

    def measure_hello(self):
        """Measure a bare cheroot app with the same load generator."""
        server = servers.ServerProcess(
            [sys.executable, str(ROOT / "bench" / "hello_app.py"),
             "--port", "0", "--threads", str(SERVICE_THREADS)],
            self.scratch / "hello.log", cwd=ROOT)
        with server.start():
            result = self._load(
                server, "bare cheroot hello world, c=8", "",
                [Request("GET", "/")], self.args.requests * 4, 8,
                unit="requests/s")
            self.figures["hello"] = result

    def measure_naive(self):
        """Measure the naive tutorial-style server on the same photos."""
        server = servers.ServerProcess(
            [sys.executable, str(ROOT / "bench" / "naive_app.py"),
             "--port", "0"], self.scratch / "naive.log", cwd=ROOT)
        with server.start():
            self._check_top1(server.address, 1, "naive")
            for concurrency in CONCURRENCIES:
                result = self._load(
                    server, f"naive v1, c={concurrency}",
                    f"service v1, c={concurrency}",
                    self._predict_requests(1), self.args.requests,
                    concurrency)
                self.figures[("naive", 1, concurrency)] = result

    def _measure_words(self, server):
        """Measure GET and PATCH of one word at concurrency 8."""
        json_type = (("Content-Type", "application/json"),)
        status, _ = _call(server.address, Request(
            "PUT", f"/words/{WORD}", b'{"count": 0}', json_type))
        if status not in (200, 201):
            raise servers.ServerError(f"PUT /words/{WORD} answered {status}")
        for method, body in (("GET", b""), ("PATCH", b'{"increment": 1}')):
            request = Request(method, f"/words/{WORD}", body,
                              json_type if body else ())
            result = self._load(
                server, f"service {method} /words/<word>, c=8",
                "bare cheroot hello world, c=8", [request],
                self.args.requests * 4, 8, unit="requests/s")
            self.figures[("words", method)] = result

    def _load(self, server, name, reference, requests, total, concurrency,
              unit="images/s"):
        """Run one load level against a server and record its row."""
        result = run_load(server.address, requests, total, concurrency,
                          self.args.time_limit)
        server.check_alive()
        self.load_rows.append(report.LoadRow(
            name, reference, result.rate, result.percentile(0.5),
            result.percentile(0.99), result.error_count, unit))
        if result.errors:
            self.notes.append(f"{name}: errors {dict(result.errors)}")
        if result.timed_out:
            self.notes.append(f"{name}: stopped by --time-limit after "
                              f"{result.ok} requests")
        self.progress(f"{name}: {result.rate:.1f} {unit}, p50 "
                      f"{result.percentile(0.5) * 1000:.1f} ms, "
                      f"{result.error_count} errors")
        return result

    def _inproc_ref(self, version, concurrency):
        """Return the in-process row a server load level compares with."""
        if concurrency == 1:
            return f"in-process v{version}, 1 thread"
        limit = self.figures[("inproc", version, "limit")]
        return f"in-process v{version}, {limit.threads} threads"

    def _predict_requests(self, version):
        """Return the multipart POSTs of the photos, sent in turn."""
        requests = []
        for name, data in zip(PHOTOS, self.photos):
            body, content_type = multipart_body("image", name, data)
            requests.append(Request(
                "POST", f"/predict/model/v{version}", body,
                (("Content-Type", content_type),)))
        return requests

    def _first_prediction(self, server, timeout=60.0):
        """Return seconds from the server's start to a 200 prediction."""
        request = self._predict_requests(1)[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status, _ = _call(server.address, request)
            except OSError:
                status = None
            if status == 200:
                return time.monotonic() - server.started_at
            server.check_alive()
            time.sleep(0.005)
        raise servers.ServerError(f"no prediction within {timeout} s")

    def _check_top1(self, address, version, label):
        """Note whether a server's top-1 classes match the pipeline's."""
        found = []
        for request in self._predict_requests(version):
            status, body = _call(address, request)
            if status != 200:
                raise servers.ServerError(
                    f"{label} answered {status} to {request.path}: "
                    f"{body[:200]!r}")
            answer = json.loads(body)
            found.append(answer["predictions"][0]["classes"][0]["index"])
        expected = self.tops[version]
        verdict = "same as" if found == expected else "DIFFERENT from"
        self.notes.append(f"{label} v{version}: top-1 classes {found}, "
                          f"{verdict} the in-process pipeline's {expected}")

    def _rss_rows(self, first, warm, warm_count, last, count):
        """Record the RSS readings and the growth between them."""
        first_name = "service RSS after its first prediction"
        warm_name = f"service RSS after {warm_count} predictions"
        self.value_rows.extend([
            report.ValueRow(first_name, "", first, "MiB"),
            report.ValueRow(warm_name, first_name, warm, "MiB"),
            report.ValueRow(f"service RSS after {count} predictions",
                            first_name, last, "MiB")])
        self.figures["rss"] = (first, warm, last, count)

    def render(self):
        """Return the whole report as Markdown."""
        args = self.args
        sections = [
            "## Benchmark",
            "",
            report.pairs_table(machine.describe(), ("machine", "")),
            "",
            f"Photos {', '.join(PHOTOS)} in turn, as multipart uploads; "
            f"{args.requests} requests per prediction level, "
            f"{args.requests * 4} per word and hello level; load from "
            "separate client processes with keep-alive http.client "
            "connections on 127.0.0.1 (c = concurrent connections); "
            "latencies as the client sees them; x ref = this figure "
            "divided by the same figure of the reference row.",
            "",
            "### Throughput and latency",
            "",
            report.load_table(self.load_rows),
            "",
            "### Memory and start",
            "",
            report.value_table(self.value_rows),
            "",
            "### Targets",
            "",
            report.target_table(self.targets()),
            "",
        ]
        sections.extend(f"- {note}" for note in self.notes)
        sections.append(
            f"\nWhole run: {self.figures['total']:.0f} s, during which "
            f"other processes (or the hypervisor) kept "
            f"{self.figures['others'] * 100:.0f} % of the CPUs busy.")
        return "\n".join(sections)

    def targets(self):
        """Return every target with what this run measured."""
        figures = self.figures
        targets = []
        for version in self.versions:
            limit = figures[("inproc", version, "limit")].rate
            served = figures[("service", version, 8)].rate
            targets.append(_at_least(
                f"v{version} predictions/s at c=8 vs in-process limit",
                served, limit, 0.90))
        for version in self.versions:
            inproc = figures[("inproc", version, 1)].percentile(0.5)
            served = figures[("service", version, 1)].percentile(0.5)
            targets.append(report.Target(
                f"v{version} p50 at c=1 vs in-process p50 + 1 ms",
                f"{served * 1000:.1f} ms vs {inproc * 1000:.1f} ms",
                f"<= {inproc * 1000 + 1:.1f} ms",
                served <= inproc + 0.001))
        targets.append(_at_least(
            "v1 predictions/s at c=8 vs naive server",
            figures[("service", 1, 8)].rate,
            figures[("naive", 1, 8)].rate, 1.5))
        hello = figures["hello"].rate
        for method in ("GET", "PATCH"):
            targets.append(_at_least(
                f"{method} /words/<word> requests/s vs bare cheroot",
                figures[("words", method)].rate, hello, 0.80))
        first, _, last, count = figures["rss"]
        growth = last / first - 1
        targets.append(report.Target(
            f"RSS growth over {count} predictions",
            f"{growth * 100:+.1f} %", "<= +5.0 %", growth <= 0.05))
        start, imports = figures["start"], figures["import"]
        targets.append(report.Target(
            "start to first prediction vs import time",
            f"{start / imports:.2f}x ({start:.2f} s vs {imports:.2f} s)",
            "<= 2.00x", start <= 2 * imports))
        return targets


def _at_least(name, value, reference, ratio):
    """Return the target value >= ratio * reference."""
    measured = value / reference if reference else math.nan
    return report.Target(
        name, f"{measured:.2f}x ({value:.1f} vs {reference:.1f})",
        f">= {ratio:.2f}x", measured >= ratio)


def _call(address, request, timeout=30.0):
    """Send one request on a new connection; return (status, body)."""
    connection = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        connection.request(request.method, request.path, body=request.body,
                           headers=dict(request.headers))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
