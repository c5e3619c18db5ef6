"""Run the whole benchmark once and print its Markdown report.

Usage, from the project root with the project's virtualenv::

    python -m bench [--quick] [--requests N] [--rss-predictions N]
    python bench/run.py ...

Steps, all in one run: the import time of the runtime packages; the
service (``api.py``, with a temporary SQLite file) from its start to its
first prediction; its predictions at several concurrencies; its memory
over many predictions; its word routes; then what its parts cost: a new
service as shipped in turn with one without its metrics and logging,
one without its guards against hostile clients (``bench/stripped.py``)
and nginx, configured as shipped, in front of it.

Every figure that a target compares is measured in alternating blocks
with its reference: in-process pipeline, service and naive server take
turns, block by block, as do the bare cheroot app and the word routes.
On a shared machine the speed drifts by several per cent within a
minute; alternating puts the same drift into both sides of a ratio.
Progress goes to stderr, the report to stdout.
"""

import argparse
import contextlib
import http.client
import json
import math
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types

if not __package__:
    # Run as ``python bench/run.py``: make ``bench`` and ``app`` importable.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from app.settings import load_settings  # noqa: E402
from bench import machine, report, servers  # noqa: E402
from bench.inprocess import (  # noqa: E402
    InProcessPipeline, combine_pipeline_results)
from bench.load import (  # noqa: E402
    Request, combine_load_results, multipart_body, run_load)
from deploy.cluster import free_port, start_front  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHOTOS = ("chelsea.jpg", "astronaut.jpg")
CONCURRENCIES = (1, 8, 32)
# Each paired measurement is split into this many alternating blocks.
BLOCKS = 5
WORD = "benchmark"
# What the service cannot start without: numpy, Pillow's image module
# and the runtime's interpreter (the packages alone import little beyond
# NumPy). The start target compares with their bare import.
IMPORTS = ("numpy", "PIL.Image", "ai_edge_litert.interpreter")
# Alternating blocks of 20 invokes each version's invoke is timed in.
INVOKE_BLOCKS = 10
# Turns of a fresh service's start and a fresh bare import: on a shared
# machine the medians of five turns of the same code ranged from 1.8 to
# 2.5 times the import.
START_TURNS = 9
# Parts taken out of the service (bench/stripped.py) to measure what
# they cost, and what each holds.
STRIPPED_PARTS = {"operations": "metrics and logging",
                  "guards": "hostile-client guards"}
TWIN_ROW = "service v1 as shipped, a second process, c=8"
FRONT_ROW = "nginx front -> service v1 as shipped, c=8"
BOTTLE_ROW = "minimal Bottle app, GET /words/<word>, c=8"
# The parts cost a few per cent at most: twice the requests of a
# prediction level, in shorter blocks, keep the noise near a per cent.
PARTS_COST_SCALE = 2
PARTS_COST_BLOCKS = 10
# The service's default worker thread count (setup.cfg: two per CPU),
# given to the bare cheroot app too so that both run the same server
# configuration.
SERVICE_THREADS = load_settings(environ={}).threads


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
                        help="predictions between the warm and the last RSS "
                        "readings (default 10000, 1000 with --quick)")
    parser.add_argument("--no-v2", action="store_true",
                        help="measure model version 1 only, not 2 and 3")
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
        self.versions = (1,) if args.no_v2 else (1, 2, 3)
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
            servers.compile_bytecode(ROOT, ("api.py", "app", "bench"))
            self.measure_start()
            if 3 in self.versions:
                self.measure_full_integer()
            self.measure_service()
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

    def measure_start(self):
        """Time start to first prediction and the bare import, in turns.

        A fresh ``api.py`` (no drain, so that it stops at once) and a
        fresh ``python -c "import ..."`` take turns ``START_TURNS`` times;
        each figure is the median of its turns, so that a stretch of a
        faster or slower machine falls on both.
        """
        imports, starts = [], []
        for turn in range(START_TURNS):
            imports.append(servers.time_imports(IMPORTS, repeat=1))
            env = servers.clean_environment(
                APP_SQLITE_PATH=str(self.scratch / f"start-{turn}.sqlite3"),
                APP_DRAIN_SECONDS="0")
            with servers.ServerProcess(
                    [sys.executable, "api.py", "--port", "0"],
                    self.scratch / f"start-{turn}.log", env=env,
                    cwd=ROOT) as server:
                starts.append(self._first_prediction(server))
        imported, first = statistics.median(imports), statistics.median(
            starts)
        self.figures["import"], self.figures["start"] = imported, first
        import_name = f"`python -c \"import {', '.join(IMPORTS)}\"`"
        self.value_rows.extend([
            report.ValueRow(import_name, "", imported, "s"),
            report.ValueRow("service: start to first prediction",
                            import_name, first, "s")])
        self.progress(f"imports {imported:.2f} s, start to first "
                      f"prediction {first:.2f} s (medians of "
                      f"{START_TURNS})")

    def measure_full_integer(self):
        """Time v3's invoke against v1's and count where their answers agree.

        ``model/evaluate.py`` does both, in-process: one single-thread
        interpreter per version, invoked in alternating blocks, and every
        version on the photos the calibration never saw.
        """
        output = subprocess.run(
            [sys.executable, str(ROOT / "model" / "evaluate.py"),
             "--versions", "3", "--invoke-blocks", str(INVOKE_BLOCKS),
             "--json"], check=True, cwd=ROOT, stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL).stdout
        figures = json.loads(output)
        self.figures["evaluation"] = figures
        invoke = figures["invoke_seconds"]
        v1_name = "v1 invoke, one thread (median)"
        self.value_rows.extend([
            report.ValueRow(v1_name, "", invoke["1"], "ms"),
            report.ValueRow("v3 invoke, one thread (median)", v1_name,
                            invoke["3"], "ms")])
        agreement = figures["agreement"]["3"]
        self.notes.append(
            f"v3 against v1 on {figures['inputs']} inputs the calibration "
            f"never saw: top-1 agreement {agreement['top1']:.1%}, top-5 "
            f"overlap {agreement['top5']:.1%}, v1's top-1 in v3's top 5 "
            f"{agreement['top1_in_top5']:.1%}")
        self.progress(f"invoke v1 {invoke['1'] * 1000:.2f} ms, v3 "
                      f"{invoke['3'] * 1000:.2f} ms; top-1 agreement "
                      f"{agreement['top1']:.1%}")

    def measure_service(self):
        """Start api.py first, then its references; measure them all."""
        env = servers.clean_environment(
            APP_SQLITE_PATH=str(self.scratch / "words.sqlite3"))
        service = servers.ServerProcess(
            [sys.executable, "api.py", "--port", "0"],
            self.scratch / "api.log", env=env, cwd=ROOT)
        with service.start():
            self._first_prediction(service)
            rss_first = service.rss_bytes()
            with self._naive_server() as naive:
                self.pipeline = InProcessPipeline(self.photos, self.versions)
                try:
                    self.measure_predictions(service, naive)
                finally:
                    self.pipeline.close()
            rss_warm = service.rss_bytes()
            self.progress(f"RSS {rss_first / 2**20:.0f} MiB after the first "
                          f"prediction, {rss_warm / 2**20:.0f} MiB warm")
            result = self._load(
                service, f"service v1, c=8, {self.args.rss_predictions} "
                "predictions between RSS readings", "",
                self._predict_requests(1), self.args.rss_predictions, 8)
            self._rss_rows(rss_first, rss_warm, service.rss_bytes(),
                           result.ok)
            with self._hello_server() as hello, \
                    self._hello_server(bottle=True) as bottle_app:
                self.measure_words(service, hello, bottle_app)
            service.check_alive()
        self.measure_parts_cost()

    def measure_predictions(self, service, naive):
        """Measure every version and level: pipeline, service, naive.

        At each level the versions take turns too, since the v3 target
        compares v3 with v1.
        """
        for version in self.versions:
            self._check_top1(service.address, version, "service")
        self._check_top1(naive.address, 1, "naive")
        threads = self.pipeline.threads
        for concurrency in CONCURRENCIES:
            sides = {}
            for version in self.versions:
                requests = self._predict_requests(version)
                inproc = (f"in-process v{version}, "
                          f"{1 if concurrency == 1 else threads} thread"
                          f"{'' if concurrency == 1 else 's'}")
                served = f"service v{version}, c={concurrency}"
                if concurrency in (1, 8):
                    sides[inproc] = (
                        "", lambda count, t=min(concurrency, threads),
                        v=version: self.pipeline.run(v, count, t))
                sides[served] = (inproc if concurrency in (1, 8) else
                                 self._limit_row(version), self._sender(
                                     service, requests, concurrency))
                if version == 1:
                    sides[f"naive v1, c={concurrency}"] = (
                        served, self._sender(naive, requests, concurrency))
            results = self._alternate(sides, self.args.requests)
            for name, result in results.items():
                self.figures[name] = result
            service.check_alive()

    def measure_parts_cost(self):
        """Measure v1 at c=8 with operations, then guards, taken out.

        Each stripped service (``bench/stripped.py``) is api.py without
        one part. A new api.py as shipped takes turns with them, block by
        block, so its ratio to each is what that part costs: all of them
        start together and serve the same requests, where the service
        measured so far holds interpreters of every version. nginx in
        front of the shipped one, and a second shipped process (whose
        ratio is the noise), take their turns too.
        """
        requests = self._predict_requests(1)
        sides = {}
        with contextlib.ExitStack() as stack:
            for part in (None, *STRIPPED_PARTS):
                server = stack.enter_context(self._stripped_server(part))
                self._check_top1(server.address, 1,
                                 f"without {part}" if part else "shipped")
                sides[_stripped_row(part)] = (
                    "" if part else _stripped_row("operations"),
                    self._sender(server, requests, 8))
                if part is None:
                    front = self._front(server, stack)
                    sides[FRONT_ROW] = (_stripped_row(None), self._sender(
                        front, requests, 8))
            # Two processes of the same code differ by the noise of these
            # rows: a cost below that is not measured.
            twin = stack.enter_context(
                self._stripped_server(None, "shipped-twin"))
            sides[TWIN_ROW] = (_stripped_row(None), self._sender(
                twin, requests, 8))
            results = self._alternate(
                sides, self.args.requests * PARTS_COST_SCALE,
                PARTS_COST_BLOCKS)
        self.figures.update(results)
        twin, shipped = results[TWIN_ROW].rate, results[
            _stripped_row(None)].rate
        self.notes.append(
            f"two processes of the shipped service, measured in turn, "
            f"differ by {abs(twin / shipped - 1) * 100:.1f} % "
            f"({shipped:.1f} and {twin:.1f} images/s): the noise of the "
            "rows that price the parts")

    def _front(self, server, stack):
        """Start nginx, configured as shipped, in front of ``server``.

        Return what a sender needs of it (``address``, ``check_alive``);
        ``stack`` stops it.
        """
        # nginx's workers drop root and keep request bodies below here.
        self.scratch.chmod(0o755)
        port = free_port()
        front = start_front(self.scratch / "nginx", port,
                            [f"{server.address[0]}:{server.address[1]}"],
                            self.scratch / "nginx.log")
        stack.callback(front.stop)
        return types.SimpleNamespace(address=("127.0.0.1", port),
                                     check_alive=front.check)

    def measure_words(self, service, hello, bottle_app):
        """Measure GET and PATCH of one word, alternating with hello.

        The minimal Bottle app shows how much of the gap is the framework.
        """
        json_type = (("Content-Type", "application/json"),)
        status, _ = _call(service.address, Request(
            "PUT", f"/words/{WORD}", b'{"count": 0}', json_type))
        if status not in (200, 201):
            raise servers.ServerError(f"PUT /words/{WORD} answered {status}")
        hello_name = "bare cheroot hello world, c=8"
        sides = {
            hello_name: ("", self._sender(
                hello, [Request("GET", "/")], 8, "requests/s")),
            BOTTLE_ROW: (hello_name, self._sender(
                bottle_app, [Request("GET", f"/words/{WORD}")], 8,
                "requests/s"))}
        for method, body in (("GET", b""), ("PATCH", b'{"increment": 1}')):
            request = Request(method, f"/words/{WORD}", body,
                              json_type if body else ())
            sides[f"service {method} /words/<word>, c=8"] = (
                BOTTLE_ROW, self._sender(service, [request], 8,
                                         "requests/s"))
        results = self._alternate(sides, self.args.requests * 4)
        for method in ("GET", "PATCH"):
            self.figures[("words", method)] = results[
                f"service {method} /words/<word>, c=8"]
        self.figures["bottle"] = results[BOTTLE_ROW]

    def _alternate(self, sides, total, blocks=BLOCKS):
        """Measure each side in ``blocks`` turns; record and return the rows.

        ``sides`` maps a row name to ``(reference row name, measure)``,
        where ``measure(count)`` returns a result with ``rate``,
        ``percentile()`` and ``latencies``.
        """
        block = max(1, total // blocks)
        parts = {name: [] for name in sides}
        names = list(sides)
        for turn in range(blocks):
            # Each block starts with the next side, so that whatever
            # drifts within a block (the machine's other work, its
            # clock) favours no side over the run.
            start = turn % len(names)
            for name in names[start:] + names[:start]:
                parts[name].append(sides[name][1](block))
        results = {}
        for name, (reference, measure) in sides.items():
            combine = (combine_pipeline_results
                       if name.startswith("in-process")
                       else combine_load_results)
            result = combine(parts[name])
            results[name] = result
            self._record(name, reference, result,
                         getattr(measure, "unit", "images/s"))
        return results

    def _sender(self, server, requests, concurrency, unit="images/s"):
        """Return a measure(count) sending requests to a server."""
        def measure(count):
            # At least one request per connection, so that every block
            # runs at the concurrency it is named after.
            result = run_load(server.address, requests,
                              max(count, concurrency), concurrency,
                              self.args.time_limit)
            server.check_alive()
            return result
        measure.unit = unit
        return measure

    def _record(self, name, reference, result, unit):
        """Add a measurement's row and report its progress."""
        errors = getattr(result, "error_count", 0)
        self.load_rows.append(report.LoadRow(
            name, reference, result.rate, result.percentile(0.5),
            result.percentile(0.99), errors, unit))
        if getattr(result, "errors", None):
            self.notes.append(f"{name}: errors {dict(result.errors)}")
        if getattr(result, "timed_out", False):
            self.notes.append(f"{name}: stopped by --time-limit")
        self.progress(f"{name}: {result.rate:.1f} {unit}, p50 "
                      f"{result.percentile(0.5) * 1000:.1f} ms, "
                      f"{errors} errors")

    def _load(self, server, name, reference, requests, total, concurrency,
              unit="images/s"):
        """Run one load level against a server and record its row."""
        result = self._sender(server, requests, concurrency, unit)(total)
        self._record(name, reference, result, unit)
        return result

    def _naive_server(self):
        """Return the naive tutorial-style server, not yet started."""
        return servers.ServerProcess(
            [sys.executable, str(ROOT / "bench" / "naive_app.py"),
             "--port", "0"], self.scratch / "naive.log", cwd=ROOT)

    def _stripped_server(self, part, name=None):
        """Return api.py without ``part`` (None: as shipped), not started."""
        name = name or (f"without-{part}" if part else "shipped")
        env = servers.clean_environment(
            APP_SQLITE_PATH=str(self.scratch / f"{name}.sqlite3"))
        script = (["api.py"] if part is None else
                  [str(ROOT / "bench" / "stripped.py"), "--without", part])
        return servers.ServerProcess(
            [sys.executable, *script, "--port", "0"],
            self.scratch / f"{name}.log", env=env, cwd=ROOT)

    def _hello_server(self, bottle=False):
        """Return the bare cheroot (or minimal Bottle) app, not started."""
        return servers.ServerProcess(
            [sys.executable, str(ROOT / "bench" / "hello_app.py"),
             "--port", "0", "--threads", str(SERVICE_THREADS),
             *(["--bottle"] if bottle else [])],
            self.scratch / ("bottle.log" if bottle else "hello.log"),
            cwd=ROOT)

    def _limit_row(self, version):
        """Return the name of a version's in-process limit row."""
        return f"in-process v{version}, {self.pipeline.threads} threads"

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
        """Return seconds from the server's start to a 200 prediction.

        The request goes to the default version, the one the service
        loads before it accepts connections.
        """
        body, content_type = multipart_body("image", PHOTOS[0],
                                            self.photos[0])
        request = Request("POST", "/predict/model", body,
                          (("Content-Type", content_type),))
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
        expected = self.pipeline.top1(version)
        verdict = "same as" if found == expected else "DIFFERENT from"
        self.notes.append(f"{label} v{version}: top-1 classes {found}, "
                          f"{verdict} the in-process pipeline's {expected}")

    def _rss_rows(self, first, warm, last, count):
        """Record the RSS readings and the growth between them.

        "Warm" is after every load level: every worker thread has served
        and every interpreter the concurrency called for exists, so what
        grows after it grows with the number of predictions.
        """
        first_name = "service RSS after its first prediction"
        warm_name = "service RSS warm (after every load level)"
        self.value_rows.extend([
            report.ValueRow(first_name, "", first, "MiB"),
            report.ValueRow(warm_name, first_name, warm, "MiB"),
            report.ValueRow(f"service RSS after {count} more predictions",
                            warm_name, last, "MiB")])
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
            f"{args.requests * 4} per word and hello level, each split "
            f"into {BLOCKS} blocks that alternate with the blocks of the "
            "rows they are compared with; load from wrk (keep-alive "
            "connections on 127.0.0.1, c = concurrent connections); "
            "latencies as the client sees them; in-process rows run N "
            "request threads on pools built from the same settings as the "
            "service's; x ref = this figure divided by the same figure of "
            "the reference row.",
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
            targets.append(_at_least(
                f"v{version} predictions/s at c=8 vs in-process limit",
                figures[f"service v{version}, c=8"].rate,
                figures[self._limit_row(version)].rate, 0.90))
        for version in self.versions:
            inproc = figures[f"in-process v{version}, 1 thread"].percentile(
                0.5)
            served = figures[f"service v{version}, c=1"].percentile(0.5)
            targets.append(report.Target(
                f"v{version} p50 at c=1 vs in-process p50 + 1 ms",
                f"{served * 1000:.1f} ms vs {inproc * 1000:.1f} ms",
                f"<= {inproc * 1000 + 1:.1f} ms",
                served <= inproc + 0.001))
        targets.append(_at_least(
            "v1 predictions/s at c=8 vs naive server",
            figures["service v1, c=8"].rate,
            figures["naive v1, c=8"].rate, 1.5))
        if 3 in self.versions:
            invoke = figures["evaluation"]["invoke_seconds"]
            # Speed is the inverse of the time an invoke takes.
            targets.append(_at_least(
                "v3 (full integer) invokes/s vs v1, one thread",
                1 / invoke["3"], 1 / invoke["1"], 1.7))
            targets.append(_at_least(
                "v3 (full integer) predictions/s at c=8 vs v1",
                figures["service v3, c=8"].rate,
                figures["service v1, c=8"].rate, 1.5))
            top1 = figures["evaluation"]["agreement"]["3"]["top1"]
            targets.append(report.Target(
                "v3 top-1 agreement with v1", f"{top1:.1%}", ">= 95.0 %",
                top1 >= 0.95))
        shipped = figures[_stripped_row(None)].rate
        for part in STRIPPED_PARTS:
            targets.append(_at_least(
                f"v1 predictions/s at c=8 with {STRIPPED_PARTS[part]} vs "
                "without",
                shipped, figures[_stripped_row(part)].rate, 0.98))
        targets.append(_at_least(
            "v1 predictions/s at c=8 through the nginx front vs direct",
            figures[FRONT_ROW].rate, shipped, 0.95))
        bottle = figures["bottle"].rate
        for method, ratio in (("GET", 0.9), ("PATCH", 0.5)):
            targets.append(_at_least(
                f"{method} /words/<word> requests/s vs minimal Bottle app",
                figures[("words", method)].rate, bottle, ratio))
        _, warm, last, count = figures["rss"]
        growth = last / warm - 1
        targets.append(report.Target(
            f"RSS growth over {count} predictions (from warm)",
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
    # Three decimals: 0.896 shown as "0.90x" beside "NO" reads as a bug.
    return report.Target(
        name, f"{measured:.3f}x ({value:.1f} vs {reference:.1f})",
        f">= {ratio:.2f}x", measured >= ratio)


def _stripped_row(part):
    """Return the row name of the service without ``part`` (None: all)."""
    if part is None:
        return "service v1 as shipped, c=8, in turn with the stripped ones"
    return f"service v1 without {part}, c=8"


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
