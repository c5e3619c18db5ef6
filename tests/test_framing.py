"""Malformed framing gets a 4xx JSON error, never a 500 or plain text.

Every request here is written byte for byte on a raw socket, since HTTP
client libraries refuse to send most of them; every error, whether the
app or the HTTP server under it answers, has the service's shape.
"""

import http.client
import json
import socket

import pytest

from tests.conftest import TIMEOUT, RunningServer, make_settings

WORD = b'{"word": "framed"}'
POST_HEAD = (b"POST /words HTTP/1.1\r\nHost: test\r\n"
             b"Content-Type: application/json\r\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Yield one server for the module, with a one-second timeout."""
    settings = make_settings(tmp_path_factory.mktemp("framing"),
                             request_timeout=1)
    with RunningServer(settings) as running:
        yield running


def exchange(server, data):
    """Send data on a new connection; return the parsed response."""
    with socket.create_connection(server.server.bind_addr[:2],
                                  timeout=TIMEOUT) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.body = response.read()
    return response


def assert_json_error(response, status, code=None):
    """Check a response is the service's JSON error with that status."""
    assert response.status == status, response.body
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    error = json.loads(response.body)["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def chunked_post(*chunks):
    """Return a chunked POST /words whose body is the given raw chunks."""
    return (POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
            + b"".join(chunks))


def test_chunk_size_that_is_not_hex_is_400(server):
    """A chunk size of "zz" is a malformed body, not a server error."""
    response = exchange(server, chunked_post(b"zz\r\n", WORD, b"\r\n",
                                             b"0\r\n\r\n"))
    assert_json_error(response, 400, "malformed_chunked")


def test_chunk_size_of_twenty_hex_digits_is_400(server):
    """A chunk size beyond 64 bits is malformed, not a huge allocation."""
    response = exchange(server, chunked_post(b"f" * 20 + b"\r\n", WORD,
                                             b"\r\n0\r\n\r\n"))
    assert_json_error(response, 400, "malformed_chunked")


def test_chunk_data_without_its_crlf_is_400(server):
    """Chunk data must be followed by CRLF; other bytes are malformed."""
    response = exchange(server, chunked_post(
        b"%x\r\n" % len(WORD), WORD, b"XX0\r\n\r\n"))
    assert_json_error(response, 400, "malformed_chunked")


def test_well_formed_chunked_body_is_accepted(server):
    """Chunks, an extension and the final empty line make a body."""
    half = len(WORD) // 2
    response = exchange(server, chunked_post(
        b"%x;note=1\r\n" % half, WORD[:half], b"\r\n",
        b"%x\r\n" % (len(WORD) - half), WORD[half:], b"\r\n0\r\n\r\n"))
    assert response.status == 201, response.body


def test_body_shorter_than_content_length_times_out_with_408(server):
    """A body that stops short of its length is a 408 after the timeout."""
    response = exchange(server, POST_HEAD + b"Content-Length: %d\r\n\r\n"
                        % (len(WORD) + 10) + WORD)
    assert_json_error(response, 408, "request_timeout")


def test_space_before_the_colon_of_content_length_is_400(server):
    """RFC 9112 5.1: whitespace between field name and colon is refused."""
    response = exchange(server, POST_HEAD + b"Content-Length : %d\r\n\r\n"
                        % len(WORD) + WORD)
    assert_json_error(response, 400, "bad_request")


@pytest.mark.parametrize("lengths", [(len(WORD), len(WORD)),
                                     (5, len(WORD))],
                         ids=["same", "different"])
def test_two_content_length_headers_are_400(server, lengths):
    """Two Content-Length headers are refused, whichever value would win."""
    head = b"".join(b"Content-Length: %d\r\n" % length
                    for length in lengths)
    response = exchange(server, POST_HEAD + head + b"\r\n" + WORD)
    error = assert_json_error(response, 400, "bad_request")
    assert "Content-Length" in error["message"]


def test_content_length_with_transfer_encoding_is_400(server):
    """Both framings at once could be read two ways; it is refused."""
    response = exchange(server, POST_HEAD + b"Content-Length: %d\r\n"
                        % len(WORD) + b"Transfer-Encoding: chunked\r\n\r\n"
                        + b"%x\r\n" % len(WORD) + WORD + b"\r\n0\r\n\r\n")
    assert_json_error(response, 400, "bad_request")


def test_folded_header_line_is_400(server):
    """An obsolete folded line (RFC 9112 5.2) is refused, not joined."""
    response = exchange(server, POST_HEAD + b"Content-Length: %d\r\n"
                        % len(WORD) + b"X-Note: a\r\n b\r\n\r\n" + WORD)
    assert_json_error(response, 400, "bad_request")


@pytest.mark.parametrize("data,status,code", [
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 70000
     + b"\r\n\r\n", 413, "headers_too_large"),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: test\r\n\r\n", 414,
     "uri_too_long"),
    (b"GET / HTTP/2.0\r\nHost: test\r\n\r\n", 505,
     "http_version_not_supported"),
    (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", 405,
     "method_not_allowed"),
    (POST_HEAD + b"Transfer-Encoding: gzip\r\n\r\n", 501,
     "not_implemented"),
    (b"GET /health/live HTTP/1.1\r\nHost: te", 408, "request_timeout"),
], ids=["request-line", "headers-too-large", "uri-too-long",
        "http-version", "connect", "transfer-coding", "timeout"])
def test_errors_of_the_http_server_are_json(server, data, status, code):
    """Errors found before the app runs have the service's JSON shape."""
    assert_json_error(exchange(server, data), status, code)
