"""A response's head leaves with its body's first bytes, in one send.

The sockets here are ``SOCK_SEQPACKET`` pairs: each send arrives as a
record of its own, and each ``recv`` returns one record, so the tests
see how many sends a response took, which a TCP stream would hide.
"""

import contextlib
import socket

import pytest

from app.http_server.connections import ReadAheadConnection
from app.http_server.writer import HeadWithBodyWriter
from app.server import make_server
from tests.conftest import make_settings

RECORD = 65536


@pytest.fixture
def pair():
    """Yield two connected sockets that keep each send a record."""
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ends[0], ends[1]:
        for end in ends:
            end.settimeout(5)
        yield ends


def records(sock):
    """Return every record waiting on sock, one item per send."""
    found = []
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            found.append(sock.recv(RECORD))
    sock.settimeout(5)
    return found


def test_a_held_write_goes_out_with_the_next_one(pair):
    """hold_next() makes the next two writes one send, in order."""
    ours, theirs = pair
    writer = HeadWithBodyWriter(ours, "wb", 8192)
    writer.hold_next()
    writer.write(b"head;")
    assert records(theirs) == []
    writer.write(b"body")
    writer.write(b";more")
    assert records(theirs) == [b"head;body", b";more"]
    assert writer.bytes_written == len(b"head;body;more")


def test_flush_sends_a_held_write_alone(pair):
    """A head with no body to follow it is sent when the writer flushes."""
    ours, theirs = pair
    writer = HeadWithBodyWriter(ours, "wb", 8192)
    writer.hold_next()
    writer.write(b"head")
    writer.flush()
    assert records(theirs) == [b"head"]
    writer.write(b"next")
    assert records(theirs) == [b"next"]


def words_app(environ, start_response):
    """Answer /body with a JSON body and anything else with 204."""
    if environ["PATH_INFO"] == "/body":
        body = b'{"word": "w", "count": 1}\n'
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    start_response("204 No Content", [])
    return []


@pytest.mark.parametrize("path, status, body", [
    ("/body", b"200", b'{"word": "w", "count": 1}\n'),
    ("/nothing", b"204", b""),
])
def test_the_server_answers_a_request_in_one_send(tmp_path, pair, path,
                                                  status, body):
    """The service's server sends head and body together, or the head."""
    server = make_server(words_app, make_settings(tmp_path))
    try:
        ours, theirs = pair
        connection = ReadAheadConnection(server, ours)
        theirs.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"
                       .encode("ascii"))
        assert connection.rfile.receive(RECORD)
        assert connection.communicate()
        sent = records(theirs)
        assert len(sent) == 1
        head, _, answer = sent[0].partition(b"\r\n\r\n")
        assert head.split(b" ", 2)[1] == status
        assert answer == body
    finally:
        server.stop()
