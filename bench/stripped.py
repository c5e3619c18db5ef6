"""Run api.py with some of its parts taken out: the baselines of their cost.

Usage, from the project root with the project's virtualenv::

    python bench/stripped.py --without PART [--without PART] [api.py's
        own options]

Everything not named is api.py's own code (settings, app, model loading,
signals, drain), so a service run this way differs from the shipped one
in the named parts alone:

``operations``
    what operating the service costs per request: the middleware that
    gives each request an id and CORS headers and writes the access log
    line, the Prometheus metrics (requests, inference, decode,
    predictions, word-store operations) and the word store's timing
    wrapper. Their functions are swapped for ones that do nothing.
``guards``
    what the defences against hostile clients cost: the read-ahead HTTP
    server (cheroot's plain ``wsgi.Server`` instead, which hands a
    connection to a worker at once) and the decode limits (no JPEG scan
    count, no CPU deadline, no per-format pixel limit, no decode memory
    budget, glibc's own malloc arenas). The size limits stay: they are
    the service's contract, not a guard added for speed's sake.

This is a benchmark tool, never a way to serve: ``bench/run.py`` starts
it beside ``api.py`` and alternates their load.
"""

import argparse
import pathlib
import sys

from cheroot import wsgi

ROOT = pathlib.Path(__file__).resolve().parent.parent
PARTS = ("operations", "guards")


def parse_args(argv):
    """Split the parts to take out from the arguments api.py reads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--without", action="append", choices=PARTS,
                        required=True, help="a part to take out (repeat "
                        "for several)")
    return parser.parse_known_args(argv)


def main(argv=None):
    """Take the named parts out of api.py, then run it."""
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    import api
    if "operations" in args.without:
        remove_operations()
    if "guards" in args.without:
        remove_guards(api)
    return api.main(rest)


def remove_operations():
    """Serve without request ids, CORS, access log, metrics or store timing."""
    from app.ops.metrics import ServiceMetrics
    from app.web import application

    def do_nothing(*args, **kwargs):
        return None

    for name in ("observe_request", "observe_inference", "observe_decode",
                 "count_predictions", "observe_store"):
        setattr(ServiceMetrics, name, do_nothing)
    application.OperationsMiddleware = (
        lambda app, *args, **kwargs: app)
    application.TimedStore = lambda store, observe: store


def remove_guards(api):
    """Serve on cheroot's plain server and decode without the limits."""
    from app.inference import decoding, pipeline

    api.make_server = make_plain_server
    api.limit_malloc_arenas = lambda count: None
    # No scan count and no scan offsets: libjpeg reads as much as it asks.
    decoding.inspect_jpeg = lambda data, max_scans=None: None
    from_settings = pipeline.ImageLimits.from_settings

    def unguarded(settings, decode_budget=None):
        limits = from_settings(settings)
        return pipeline.ImageLimits(limits.max_image_bytes,
                                    limits.max_image_pixels,
                                    decode_timeout=None,
                                    format_pixel_limits={})

    pipeline.ImageLimits.from_settings = unguarded


class PlainServer(wsgi.Server):
    """cheroot's own server, with the stop steps app.server calls.

    It cannot close its port without resetting the connections queued on
    it, nor wait for its clients to close theirs: it stops as cheroot
    does, all at once.
    """

    def stop_accepting(self, timeout=None):
        """Say that the port was not closed apart: stop() closes it."""
        return False

    def wait_until_closed(self, timeout, cancel=None):
        """Wait for nothing: stop() closes whatever is open."""
        return True


def make_plain_server(wsgi_app, settings):
    """Return cheroot's plain server, configured as app.server does its own.

    Only the request intake differs: a connection goes to a worker thread
    as soon as it is accepted, and the worker reads the request itself.
    """
    from app.server import prepare_server, server_options
    return prepare_server(PlainServer((settings.host, settings.port),
                                      wsgi_app, **server_options(settings)),
                          settings)


if __name__ == "__main__":
    sys.exit(main())
