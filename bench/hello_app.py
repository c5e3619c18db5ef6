"""A bare "hello world" WSGI app on cheroot: the floor of any route.

It runs on the same cheroot version, with the same worker thread count
as the service, so the service's word routes can be compared with what
cheroot itself costs per request. With ``--bottle`` it is instead the
smallest Bottle app with the service's word route shape
(``GET /words/<word>`` returning a dict as JSON, no store): what Bottle
adds before any code of the service runs.

Usage: ``python bench/hello_app.py [--port P] [--threads N] [--bottle]``;
it logs ``serving on http://HOST:PORT`` on stderr once it accepts
connections.
"""

import argparse
import signal
import sys
import threading

import bottle
from cheroot import wsgi

BODY = b"Hello, world!\n"


def hello(environ, start_response):
    """Answer every request with a short plain-text body."""
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]


def bottle_app():
    """Return a Bottle app answering GET /words/<word> with a JSON dict."""
    app = bottle.Bottle()

    @app.get("/words/<word>")
    def read(word):
        return {"word": word, "count": 0}
    return app


def main(argv=None):
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--bottle", action="store_true",
                        help="serve the minimal Bottle app instead")
    args = parser.parse_args(argv)
    # The service's listen backlog (setup.cfg), so both servers take a
    # burst of new connections alike.
    server = wsgi.Server((args.host, args.port),
                         bottle_app() if args.bottle else hello,
                         numthreads=args.threads, request_queue_size=128)
    server.prepare()
    host, port = server.bind_addr[:2]
    print(f"serving on http://{host}:{port}", file=sys.stderr, flush=True)

    def stop(number, frame):
        # stop() joins the worker threads; not from inside the handler.
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
