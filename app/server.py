"""Run a WSGI app on cheroot, CherryPy's production HTTP server."""

import logging
import signal
import threading
import time

from app.http_server.connections import ReadAheadLimits
from app.http_server.server import Server

log = logging.getLogger(__name__)


def make_server(wsgi_app, settings):
    """Return a cheroot server bound to the configured address.

    Binding happens here rather than in :func:`serve`, so that with port 0
    the caller can read the port the system picked before serving. The
    server reads each request whole before a worker thread takes it, so
    slow or silent clients cannot hold the workers (see
    :mod:`app.http_server`).
    """
    limits = ReadAheadLimits(
        max_header_bytes=settings.max_header_bytes,
        # The largest body any route accepts; a longer declared body
        # goes straight to the app, which refuses it unread.
        max_body_bytes=max(settings.max_body_bytes,
                           settings.max_upload_bytes),
        header_timeout=settings.header_timeout,
        min_body_rate=settings.min_body_rate,
        body_grace=settings.body_grace,
        max_buffered_bytes=settings.max_buffered_bytes)
    return prepare_server(Server((settings.host, settings.port), wsgi_app,
                                 limits, **server_options(settings)),
                          settings)


def server_options(settings):
    """Return the cheroot constructor arguments that settings configure."""
    return {"numthreads": settings.threads,
            "timeout": settings.request_timeout,
            "shutdown_timeout": settings.shutdown_timeout,
            # cheroot's default backlog is 5: a burst of new connections
            # (a load balancer, a client pool opening) overflows it, and
            # the dropped ones wait a full second for the SYN to be
            # retried.
            "request_queue_size": settings.listen_backlog,
            "server_name": "word-and-image-service"}


def prepare_server(server, settings):
    """Set what cheroot takes as attributes, then bind; return the server."""
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
                          announce=None, drain_seconds=0.0, draining=None):
    """Serve until one of the signals arrives, then stop gracefully.

    First the service drains: ``draining`` is set (readiness answers
    503, so a load balancer stops sending) while every request is still
    served, for ``drain_seconds``; a second signal cuts that short. Then
    it stops without dropping a connection, within the server's
    ``shutdown_timeout``: it closes its port without resetting the
    connections the kernel has queued on it (a proxy that never reads
    readiness, such as open-source nginx, learns from the closed port
    and tries another replica), serves what is left, waits for its
    clients to close their connections (unless ``drain_seconds`` is 0,
    a stop at once), and only then has cheroot's ``stop`` end whatever
    remains. A stop from an orchestrator (SIGTERM) thus loses no request
    that reached the service. ``announce`` is
    called once the signals are handled: a supervisor that reads it as
    "started" may stop the service at once.
    """
    stopping = threading.Event()
    hurry = threading.Event()
    draining = draining or threading.Event()

    def drain_then_stop():
        draining.set()
        # Answers from now on say Connection: close, so clients and
        # proxies open new connections (elsewhere, once this one is out
        # of rotation or its port is closed) instead of reusing one that
        # is about to close.
        server.keep_alive_conn_limit = 0
        if drain_seconds:
            log.info("draining for %s s before closing the port",
                     drain_seconds)
            hurry.wait(drain_seconds)
        deadline = time.monotonic() + server.shutdown_timeout
        server.stop_accepting()
        # Closing an idle connection races a client sending on it, so the
        # clients close them: after an answer that says so, or once idle
        # for their own keep-alive timeout (nginx's is below ours). A stop
        # with no drain is a stop at once: there is no proxy to spare.
        if drain_seconds and not server.wait_until_closed(
                deadline - time.monotonic(), hurry):
            log.info("closing %d connections still open",
                     server.open_connections)
        # What is left of shutdown_timeout is for cheroot's stop, which
        # gives in-flight requests that long before it cuts them off.
        server.shutdown_timeout = max(0.0, deadline - time.monotonic())
        server.stop()

    stopper = threading.Thread(target=drain_then_stop,
                               name="drain-then-stop", daemon=True)

    def request_stop(number, frame):
        if stopping.is_set():
            hurry.set()
            return
        stopping.set()
        log.info("received %s, stopping", signal.Signals(number).name)
        # stop() joins worker threads, which must not happen inside a
        # signal handler running on the thread that serves.
        stopper.start()

    previous = {number: signal.signal(number, request_stop)
                for number in signals}
    if announce is not None:
        announce()
    try:
        server.serve()
    finally:
        # serve() returns as soon as stop() begins; the stop itself, which
        # lets in-flight requests finish, must end before the caller
        # releases what those requests use (the store, the models).
        if stopper.is_alive():
            stopper.join()
        server.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
