"""A stopping server drops no connection: none queued, none kept alive.

Each test serves a small WSGI app on the service's own server
(``make_server``) on a free loopback port, and stops it the way
``api.py`` does: :func:`serve_until_signalled` on the main thread, and a
signal (SIGUSR1 here, so that nothing else reacts to it).
"""

import signal
import socket
import threading
import time

import pytest

from app.http_server.listener import refuse_new_connections
from app.server import make_server, serve_until_signalled
from tests.conftest import TIMEOUT, make_settings

STOP_SIGNAL = signal.SIGUSR1
QUEUED = 16
BODY = b'{"increment": 1}'


def echo(environ, start_response):
    """Answer 200 with the request's body."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def request_bytes(path="/words/w"):
    """Return a PATCH whose body the app echoes."""
    return (f"PATCH {path} HTTP/1.1\r\nHost: test\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY


def read_answer(sock):
    """Read one answer; return (status, Connection header, body).

    A connection reset or closed before a whole answer gives the name
    of what happened instead of a status.
    """
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return ("closed", None, data)
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, value in
                   (line.split(": ", 1) for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            chunk = sock.recv(65536)
            if not chunk:
                return ("closed", None, data)
            body += chunk
    except ConnectionResetError:
        return ("reset", None, data)
    return (int(lines[0].split()[1]), headers.get("connection"), body)


def stop_signal():
    """Send the stop signal to the main thread, where the server serves."""
    signal.pthread_kill(threading.main_thread().ident, STOP_SIGNAL)


def serve_then_stop(server, announce, drain_seconds=0.0):
    """Serve on this thread until stopped; end it anyway if it hangs."""
    watchdog = threading.Timer(TIMEOUT * 3, server.stop)
    watchdog.daemon = True
    watchdog.start()
    try:
        serve_until_signalled(server, signals=(STOP_SIGNAL,),
                              announce=announce, drain_seconds=drain_seconds)
    finally:
        watchdog.cancel()


def refused(address):
    """Tell whether a new connection to ``address`` is refused now."""
    try:
        with socket.create_connection(address, timeout=0.2):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        # No answer at all: the port is not taking connections, but not
        # closed yet either.
        return False


def test_stop_answers_connections_queued_before_it_closes_its_port(
        tmp_path):
    """Connections the kernel queued, not yet accepted, are answered.

    They are connected and have sent their PATCH before the server
    accepts anything, and the stop begins before it serves: closing the
    listening socket with them still queued would reset every one.
    """
    server = make_server(echo, make_settings(tmp_path))
    address = server.bind_addr[:2]
    clients = [socket.create_connection(address, timeout=TIMEOUT)
               for _ in range(QUEUED)]
    try:
        for sock in clients:
            sock.sendall(request_bytes())
        serve_then_stop(server, announce=stop_signal)
        answers = [read_answer(sock) for sock in clients]
    finally:
        for sock in clients:
            sock.close()
    assert answers == [(200, "close", BODY)] * QUEUED
    assert refused(address)


def test_stop_leaves_idle_keep_alive_connections_to_their_clients(tmp_path):
    """A request sent on a kept-alive connection after the stop is served.

    The client has had one answer on its connection, kept alive, and
    sends its next request once the port refuses new connections: a
    server that closed its idle connections as it stopped would drop
    that request (a proxy holding idle connections to the service sends
    on them at any moment). The answer says Connection: close. A drain,
    however short, is what tells the service that something may hold
    connections to it.
    """
    server = make_server(echo, make_settings(tmp_path))
    address = server.bind_addr[:2]
    outcomes = {}

    def client():
        with socket.create_connection(address, timeout=TIMEOUT) as sock:
            sock.sendall(request_bytes())
            outcomes["first"] = read_answer(sock)
            stop_signal()
            deadline = time.monotonic() + TIMEOUT
            while not refused(address) and time.monotonic() < deadline:
                time.sleep(0.01)
            outcomes["refused"] = refused(address)
            try:
                sock.sendall(request_bytes())
            except OSError as error:
                outcomes["second"] = (type(error).__name__, None, b"")
            else:
                outcomes["second"] = read_answer(sock)

    thread = threading.Thread(target=client, daemon=True)
    serve_then_stop(server, announce=thread.start, drain_seconds=0.1)
    thread.join(TIMEOUT)
    assert outcomes == {"first": (200, None, BODY), "refused": True,
                        "second": (200, "close", BODY)}


@pytest.mark.parametrize("family, host", [(socket.AF_INET, "127.0.0.1"),
                                          (socket.AF_INET6, "::1")])
def test_a_listener_refusing_new_connections_keeps_its_queue(family, host):
    """New SYNs go unanswered; queued connections are still accepted.

    Once the listener is closed, a new connection is refused, which a
    client may always retry: it carried no request.
    """
    try:
        listener = socket.socket(family)
        listener.bind((host, 0))
    except OSError:
        pytest.skip(f"no {host} on this machine")
    with listener:
        listener.listen(8)
        address = listener.getsockname()[:2]
        with socket.create_connection(address, timeout=TIMEOUT) as queued:
            queued.sendall(b"sent before")
            assert refuse_new_connections(listener)
            with pytest.raises(TimeoutError):
                socket.create_connection(address, timeout=0.3)
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.recv(64) == b"sent before"
                accepted.sendall(b"answer")
                assert queued.recv(64) == b"answer"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=TIMEOUT)
