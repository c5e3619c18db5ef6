"""Run a WSGI app on cheroot, CherryPy's production HTTP server."""

import logging
import signal
import threading

from cheroot import wsgi

log = logging.getLogger(__name__)


def make_server(wsgi_app, settings):
    """Return a cheroot server bound to the configured address.

    Binding happens here rather than in :func:`serve`, so that with port 0
    the caller can read the port the system picked before serving.
    """
    server = wsgi.Server(
        (settings.host, settings.port), wsgi_app,
        numthreads=settings.threads, timeout=settings.request_timeout,
        shutdown_timeout=settings.shutdown_timeout,
        # cheroot's default backlog is 5: a burst of new connections
        # (a load balancer, a client pool opening) overflows it, and the
        # dropped ones wait a full second for the SYN to be retried.
        request_queue_size=settings.listen_backlog,
        server_name="word-and-image-service")
    server.max_request_header_size = settings.max_header_bytes
    # cheroot closes keep-alive connections beyond 10 by default, so more
    # concurrent clients than that keep reconnecting and race the close.
    server.keep_alive_conn_limit = settings.keep_alive_connections
    server.prepare()
    return server


def server_url(server):
    """Return the http:// URL of a bound server."""
    host, port = server.bind_addr[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve_until_signalled(server, signals=(signal.SIGTERM, signal.SIGINT),
                          announce=None):
    """Serve until one of the signals arrives, then stop gracefully.

    cheroot's ``stop`` closes the listening socket and waits up to its
    ``shutdown_timeout`` for in-flight requests, so a stop from an
    orchestrator (SIGTERM) loses no accepted request. ``announce`` is
    called once the signals are handled: a supervisor that reads it as
    "started" may stop the service at once.
    """
    stopping = threading.Event()

    def request_stop(number, frame):
        if not stopping.is_set():
            stopping.set()
            log.info("received %s, stopping", signal.Signals(number).name)
            # stop() joins worker threads, which must not happen inside a
            # signal handler running on the thread that serves.
            threading.Thread(target=server.stop, daemon=True).start()

    previous = {number: signal.signal(number, request_stop)
                for number in signals}
    if announce is not None:
        announce()
    try:
        server.serve()
    finally:
        server.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
