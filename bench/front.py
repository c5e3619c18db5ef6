"""Measure predictions through the nginx front against the service alone.

Usage, from the project root with the project's virtualenv::

    python -m bench.front [--requests N] [--time-limit S]

It starts ``python api.py`` (a temporary SQLite file) and nginx in front
of it, configured from the shipped template (deploy/nginx/) with that one
replica, then sends the benchmark's prediction uploads (the test photos
as multipart POSTs, from wrk at c=8) to the service directly and through
nginx, in alternating blocks as bench/run.py pairs its rows, so that the
machine's drift falls on both. Target: the front costs at most 5 % of
the throughput. :func:`measure` takes a service that is already running,
so the benchmark can put the rows in its own report.
"""

import argparse
import pathlib
import sys
import tempfile

if not __package__:
    # Run as ``python bench/front.py``: make ``bench`` and ``deploy``
    # importable.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench import report, servers  # noqa: E402
from bench.load import (  # noqa: E402
    Request, combine_load_results, multipart_body, run_load)
from deploy.cluster import free_port, start_front  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHOTOS = ("chelsea.jpg", "astronaut.jpg")
CONCURRENCY = 8
BLOCKS = 5
# Throughput through the front divided by the service's own, at least.
TARGET = 0.95
DIRECT = f"service v1, c={CONCURRENCY}"
FRONTED = f"nginx front -> service v1, c={CONCURRENCY}"


def prediction_requests(version=1):
    """Return the multipart POSTs of the photos, sent in turn."""
    requests = []
    for name in PHOTOS:
        data = (ROOT / "tests" / "data" / name).read_bytes()
        body, content_type = multipart_body("image", name, data)
        requests.append(Request("POST", f"/predict/model/v{version}", body,
                                (("Content-Type", content_type),)))
    return requests


def measure(service, scratch, total, time_limit=120.0, blocks=BLOCKS):
    """Return the service's and the front's results, measured in turns.

    ``service`` is a running :class:`bench.servers.ServerProcess`; nginx
    is started in front of it in ``scratch`` and stopped at the end.
    """
    requests = prediction_requests()
    port = free_port()
    front = start_front(
        pathlib.Path(scratch) / "nginx", port,
        [f"{service.address[0]}:{service.address[1]}"],
        pathlib.Path(scratch) / "nginx.log")
    parts = {DIRECT: [], FRONTED: []}
    block = max(CONCURRENCY, total // blocks)
    try:
        for _ in range(blocks):
            for name, address in ((DIRECT, service.address),
                                  (FRONTED, ("127.0.0.1", port))):
                parts[name].append(run_load(address, requests, block,
                                            CONCURRENCY, time_limit))
                service.check_alive()
                front.check()
    finally:
        front.stop()
    return (combine_load_results(parts[DIRECT]),
            combine_load_results(parts[FRONTED]))


def rows(direct, fronted):
    """Return the two load rows and the target they are held to."""
    load_rows = [report.LoadRow(name, reference, result.rate,
                                result.percentile(0.5),
                                result.percentile(0.99), result.error_count)
                 for name, reference, result in (
                     (DIRECT, "", direct), (FRONTED, DIRECT, fronted))]
    ratio = fronted.rate / direct.rate if direct.rate else 0.0
    target = report.Target(
        "predictions through the nginx front, c=8, x the service alone",
        f"{ratio:.3f}", f">= {TARGET:.2f}", ratio >= TARGET)
    return load_rows, target


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000,
                        help="predictions per side, split into "
                        f"{BLOCKS} alternating blocks (default 2000)")
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="seconds after which a block stops starting "
                        "requests (default 120)")
    return parser.parse_args(argv)


def main(argv=None):
    """Measure both sides and print the Markdown rows and the target."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="bench-front-") as scratch:
        scratch = pathlib.Path(scratch)
        # nginx's workers drop root and write request bodies below here.
        scratch.chmod(0o755)
        env = servers.clean_environment(
            APP_SQLITE_PATH=str(scratch / "words.sqlite3"))
        service = servers.ServerProcess(
            [sys.executable, "api.py", "--port", "0"], scratch / "api.log",
            env=env, cwd=ROOT)
        with service.start():
            direct, fronted = measure(service, scratch, args.requests,
                                      args.time_limit)
    load_rows, target = rows(direct, fronted)
    print(report.load_table(load_rows))
    print()
    print(report.target_table([target]))
    return 0 if target.holds else 1


if __name__ == "__main__":
    sys.exit(main())
