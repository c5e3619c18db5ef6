"""Tell where an HTTP/1.1 request ends, from its bytes as they arrive.

The server reads each request ahead of the worker that answers it; a
:class:`RequestScanner` says, each time more bytes are in, whether the
request is whole, still arriving, or broken in a way the server must
answer before it ends. It reads header fields with the same
:class:`StrictHeaderReader` as the worker's request does, so the two
agree on where a body ends: when in doubt the scanner hands the request
over early and the worker's own parser refuses it.
"""

import io
import re

from cheroot.server import (
    COLON, CRLF, SPACE, TAB, HeaderReader, comma_separated_headers)

# RFC 9110 token: what a field name may be made of.
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# At most 16 hex digits: a chunk size beyond 64 bits is an attack, not a
# body, and Python's int() would accept "0x", "+" or "_" besides.
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_HEAD_END = b"\r\n\r\n"
# A chunk-size line (with its extensions) or trailer line longer than
# this is refused: nothing legitimate needs more.
_MAX_CHUNK_LINE = 4096
# Chunked framing may add this much to a body's size, beyond as much
# again as the body itself (a stream of one-byte chunks), and no more.
_MAX_FRAMING = 65536
# Content-Length values with more digits are beyond every limit anyway.
_MAX_LENGTH_DIGITS = 18

_SIZE, _DATA, _DATA_END, _TRAILER = range(4)


class StrictHeaderReader(HeaderReader):
    """Read header fields, refusing those that make framing ambiguous.

    Beyond cheroot's own reader it refuses, as RFC 9112 asks of a server:
    whitespace between a field name and its colon, a name that is not a
    token, an obsolete folded line, a second Content-Length, one that is
    not digits only (cheroot's ``int()`` takes "+5" and "1_0"), CR or NUL
    inside a value, and Content-Length together with Transfer-Encoding.
    Each refusal is a ValueError, which cheroot answers with a 400.
    """

    def __init__(self, drop_expect=False):
        """Read Expect too unless ``drop_expect`` (it was answered)."""
        self.drop_expect = drop_expect

    def __call__(self, rfile, hdict=None):
        """Read header lines from rfile into hdict, and return it."""
        hdict = {} if hdict is None else hdict
        while True:
            line = rfile.readline()
            if not line:
                raise ValueError("Illegal end of headers.")
            if line == CRLF:
                break
            if not line.endswith(CRLF):
                raise ValueError("HTTP requires CRLF terminators")
            if line[:1] in (SPACE, TAB):
                raise ValueError("obsolete line folding is not accepted")
            name, colon, value = line[:-2].partition(COLON)
            if not colon or not _TOKEN.fullmatch(name):
                shown = name[:64].decode("latin-1")
                raise ValueError(f"malformed header field name {shown!r}")
            key = name.title()
            value = value.strip(b" \t")
            if b"\r" in value or b"\0" in value:
                raise ValueError(f"CR or NUL in the value of "
                                 f"{key.decode('latin-1')}")
            if key == b"Content-Length":
                if key in hdict:
                    raise ValueError("more than one Content-Length header")
                if not value.isdigit():
                    raise ValueError("Content-Length must be digits only")
            if key == b"Expect" and self.drop_expect:
                continue
            if key in comma_separated_headers and key in hdict:
                value = hdict[key] + b", " + value
            hdict[key] = value
        if b"Content-Length" in hdict and b"Transfer-Encoding" in hdict:
            raise ValueError("Content-Length and Transfer-Encoding must not "
                             "come together")
        return hdict


class Refusal(Exception):
    """A request the server answers with an error before it has ended."""

    def __init__(self, status, code, message):
        """Keep the status line text, error code and message."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class RequestScanner:
    """Follow one request's bytes as they arrive; tell when it is whole.

    :meth:`scan` is called with everything received so far each time
    more arrives, and only looks at what it has not seen before.
    """

    header_reader = StrictHeaderReader()

    def __init__(self, max_header_bytes, max_body_bytes):
        """Take the largest head and the largest body any route accepts."""
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.reset()

    def reset(self):
        """Forget the request: the next bytes start a new one."""
        self.head_end = None
        self.expects_continue = False
        self.chunked = False
        self._searched = 0
        self._body_end = None
        self._state = _SIZE
        self._cursor = 0
        self._chunk_left = 0
        self._decoded = 0

    @staticmethod
    def start(buffer):
        """Return where the request line begins: after one leading CRLF.

        cheroot skips one empty line before a request (RFC 9112 2.2),
        which is also what a chunked body leaves behind it.
        """
        return 2 if buffer[:2] == CRLF else 0

    def started(self, buffer):
        """Tell whether buffer holds any of a request yet."""
        return len(buffer) > self.start(buffer)

    def wanted(self, buffer):
        """Return how many more bytes the request needs, when known."""
        if self._body_end is not None:
            return self._body_end - len(buffer)
        return None

    def scan(self, buffer):
        """Return True once a worker should take the request in buffer.

        True means the request is whole, or broken in a way the worker's
        parser refuses from the bytes already here (a malformed head, a
        Content-Length over every route's limit, which the app refuses
        without reading the body); False that more bytes are needed.
        Raises :class:`Refusal` for a chunked body the server must
        refuse itself.
        """
        if self.head_end is None:
            handed_over = self._scan_head(buffer)
            if handed_over is not None:
                return handed_over
        if self.chunked:
            return self._scan_chunks(buffer)
        return len(buffer) >= self._body_end

    def _scan_head(self, buffer):
        """Find the head's end: True or False as scan, None for a body."""
        start = self.start(buffer)
        since = max(start, self._searched - len(_HEAD_END) + 1)
        end = buffer.find(_HEAD_END, since)
        if end < 0:
            self._searched = len(buffer)
            # cheroot answers a head over the limit (413/414) or a line
            # ended by a bare LF (400) from the bytes already here.
            return (len(buffer) - start > self.max_header_bytes
                    or _BARE_LF.search(buffer, since) is not None)
        self.head_end = end + len(_HEAD_END)
        if (self.head_end - start > self.max_header_bytes
                or _BARE_LF.search(buffer, since, self.head_end)):
            return True
        return self._frame(bytes(buffer[start:self.head_end]))

    def _frame(self, head):
        """Read how the body is framed: True to hand over now, or None."""
        lowered = head.lower()
        if (b"content-length" not in lowered
                and b"transfer-encoding" not in lowered):
            return True
        line_end = head.find(CRLF)
        try:
            _, _, protocol = head[:line_end].strip().split(SPACE, 2)
            if not protocol.startswith(b"HTTP/"):
                return True
            version = tuple(map(int, protocol[5:].split(b".", 1)))
            headers = self.header_reader(io.BytesIO(head[line_end + 2:]))
        except ValueError:
            return True
        coding = headers.get(b"Transfer-Encoding")
        if coding and version == (1, 1):
            codings = [name.strip().lower() for name in coding.split(b",")
                       if name.strip()]
            if not codings or any(name != b"chunked" for name in codings):
                return True
            self.chunked = True
            self._cursor = self.head_end
        else:
            length = headers.get(b"Content-Length")
            if (length is None or len(length) > _MAX_LENGTH_DIGITS
                    or int(length) > self.max_body_bytes):
                return True
            self._body_end = self.head_end + int(length)
        self.expects_continue = headers.get(b"Expect") == b"100-continue"
        return None

    def _scan_chunks(self, buffer):
        """Follow the chunks; True after the trailer's empty line."""
        while True:
            if self._state == _DATA:
                step = min(self._chunk_left, len(buffer) - self._cursor)
                self._cursor += step
                self._chunk_left -= step
                if self._chunk_left:
                    return False
                self._state = _DATA_END
            elif self._state == _DATA_END:
                if len(buffer) - self._cursor < 2:
                    return False
                if buffer[self._cursor:self._cursor + 2] != CRLF:
                    raise _malformed("chunk data is not followed by CRLF")
                self._cursor += 2
                self._state = _SIZE
            else:
                line = self._next_line(buffer)
                if line is None:
                    return False
                if self._state == _TRAILER:
                    if line == CRLF:
                        return True
                elif self._chunk_size(line) == 0:
                    self._state = _TRAILER
                else:
                    self._state = _DATA
            framing = self._cursor - self.head_end - self._decoded
            if framing > self._decoded + _MAX_FRAMING:
                raise _malformed("chunked framing is far larger than the "
                                 "data it carries")

    def _next_line(self, buffer):
        """Return the next CRLF-ended line of the body, or None if partial."""
        newline = buffer.find(b"\n", self._cursor)
        if newline < 0:
            if len(buffer) - self._cursor > _MAX_CHUNK_LINE:
                raise _malformed("chunk-size or trailer line is too long")
            return None
        line = bytes(buffer[self._cursor:newline + 1])
        if len(line) > _MAX_CHUNK_LINE:
            raise _malformed("chunk-size or trailer line is too long")
        if not line.endswith(CRLF):
            raise _malformed("chunked body line does not end with CRLF")
        self._cursor = newline + 1
        return line

    def _chunk_size(self, line):
        """Parse a chunk-size line and count the chunk against the limit."""
        text = line[:-2].split(b";", 1)[0].rstrip(b" \t")
        if not _CHUNK_SIZE.fullmatch(text):
            shown = text[:32].decode("latin-1")
            raise _malformed(f"malformed chunk size {shown!r}")
        size = int(text, 16)
        self._decoded += size
        if self._decoded > self.max_body_bytes:
            raise Refusal("413 Payload Too Large", "body_too_large",
                          f"request body is larger than "
                          f"{self.max_body_bytes} bytes")
        self._chunk_left = size
        return size


def _malformed(message):
    """Return the refusal of a malformed chunked body."""
    return Refusal("400 Bad Request", "malformed_chunked",
                   f"malformed chunked body: {message}")
