"""Read request bodies within their limits and parse JSON, text and numbers.

Bottle reads a whole body, however large, into memory or a temporary file
the first time it is touched; :func:`read_bounded_body` reads at most the
route's limit instead, so an oversized upload is refused after limit + 1
bytes whether it comes with a Content-Length or chunked.
"""

import codecs
import collections
import io
import json
import re

import multipart

from app.errors import (
    InvalidInput, PayloadTooLarge, ServiceError, UnsupportedMediaType)

# The deepest body a route takes is a V2 request with a nested tensor:
# seven levels (request, inputs, input, batch, rows, columns, channels).
# 32 leaves room for that yet stays far below Python's recursion limit
# (1000), which the parser, and any code walking the value, would reach
# with a RecursionError, that is a 500, on a body nested deeper.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_OPENING_BRACKETS = frozenset(b"[{")
# Python's text codecs that are no character set: they read backslash
# escapes or domain names, or map bytes by a table given in code, and no
# client labels a body with them.
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape",
                           "raw-unicode-escape", "charmap", "undefined"})
# int() refuses longer digit strings (a guard against slow conversions);
# no number a request carries is anywhere near that long.
_MAX_DIGITS = 4300
_ASCII_DIGITS = re.compile(r"[0-9]+")
# Room for a few form fields besides the files a route reads.
_EXTRA_PARTS = 8


def read_bounded_body(environ, limit):
    """Replace ``wsgi.input`` by an in-memory copy of at most limit bytes."""
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    length = environ.get("CONTENT_LENGTH", "").strip()
    if not chunked and length in ("", "0"):
        # No body (most GETs): nothing to read, bound or copy.
        environ["wsgi.input"] = io.BytesIO()
        environ["CONTENT_LENGTH"] = "0"
        return b""
    stream = environ["wsgi.input"]
    if chunked:
        data = _read_body(stream, limit + 1, chunked=True)
    elif length:
        if not length.isdigit():
            raise InvalidInput("Content-Length must be a number",
                               code="invalid_content_length")
        if int(length) > limit:
            raise _too_large(limit)
        data = _read_body(stream, int(length))
        if len(data) < int(length):
            raise InvalidInput("the connection ended before the "
                               "Content-Length bytes of the body",
                               code="incomplete_body")
    else:
        data = b""
    if len(data) > limit:
        raise _too_large(limit)
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return data


def media_type(content_type):
    """Return the lower-case media type of a Content-Type header."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json_type(content_type):
    """Tell whether a Content-Type header names JSON."""
    kind = media_type(content_type)
    return kind == "application/json" or kind.endswith("+json")


def parse_json_object(content_type, data):
    """Return the JSON object in data, or raise the matching 4xx error."""
    if not is_json_type(content_type):
        raise UnsupportedMediaType(
            "this route takes a JSON body (Content-Type: application/json)")
    _check_depth(data)
    try:
        value = json.loads(data.decode("utf-8"),
                           parse_constant=_refuse_constant,
                           object_pairs_hook=_refuse_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidInput(f"body is not valid JSON: {error}",
                           code="malformed_json") from None
    if not isinstance(value, dict):
        raise InvalidInput("body must be a JSON object", code="invalid_body")
    return value


def take_fields(body, required=(), optional=()):
    """Return the body's fields, refusing missing and unknown names."""
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}",
                           code="unknown_field")
    missing = [name for name in required if name not in body]
    if missing:
        raise InvalidInput(f"missing field(s): {', '.join(missing)}",
                           code="missing_field")
    return body


def parse_text(content_type, data):
    """Return the text of a text/plain body, decoded by its charset."""
    charset = "utf-8"
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or charset
    try:
        if codecs.lookup(charset).name in _NOT_CHARSETS:
            raise LookupError(f"{charset!r} is not a character set")
        # Codecs that do not make text (base64, zlib, ...) raise
        # LookupError here; decoding errors are UnicodeError, or else a
        # ValueError such as a NUL in the codec's name.
        return data.decode(charset)
    except (LookupError, ValueError) as error:
        raise InvalidInput(f"body is not valid {charset} text: {error}",
                           code="invalid_text") from None


def parse_ascii_integer(text):
    """Return the integer text spells in ASCII digits, else None.

    str.isdigit is no test for this: it accepts superscripts, which int()
    refuses, and int() accepts other scripts' digits.
    """
    if len(text) > _MAX_DIGITS or not _ASCII_DIGITS.fullmatch(text):
        return None
    return int(text)


def read_multipart_files(content_type, data, fields, max_files):
    """Return the contents of every part named one of ``fields``, in order.

    The body is already in memory and bounded, so parts are kept in memory
    too; the part count is bounded so that a flood of tiny parts is a 413
    rather than work.
    """
    boundary = multipart.parse_options_header(content_type)[1].get(
        "boundary")
    if not boundary:
        raise InvalidInput("multipart body without a boundary",
                           code="malformed_multipart")
    parser = multipart.MultipartParser(
        io.BytesIO(data), boundary, len(data),
        part_limit=max_files + _EXTRA_PARTS, memory_limit=len(data) + 1,
        spool_limit=len(data) + 1)
    try:
        return [part.raw for part in parser if part.name in fields]
    except multipart.ParserLimitReached:
        raise PayloadTooLarge(
            f"more than {max_files} files in one request",
            code="batch_too_large") from None
    except multipart.MultipartError as error:
        raise InvalidInput(f"malformed multipart body: {error}",
                           code="malformed_multipart") from None


def _check_depth(data):
    """Refuse JSON nested deeper than MAX_JSON_DEPTH before it is parsed."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return  # too few brackets to nest that deep: most bodies
    # Brackets inside strings are text. Where the body is malformed this
    # count may go wrong, but only past the point where the parser stops.
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = 0
    for bracket in brackets:
        if bracket in _OPENING_BRACKETS:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise InvalidInput(
                    f"JSON nested more than {MAX_JSON_DEPTH} levels deep",
                    code="invalid_body")
        else:
            depth -= 1


def _refuse_duplicate_keys(pairs):
    """Return an object's pairs as a dict, refusing a key given twice.

    Python keeps the last value of a repeated key, another parser may keep
    the first: a body that means different things to each is refused.
    """
    value = dict(pairs)
    if len(value) < len(pairs):
        counts = collections.Counter(key for key, _ in pairs)
        repeated = sorted(key for key, count in counts.items() if count > 1)
        raise InvalidInput(
            "duplicate key(s) in a JSON object: "
            + ", ".join(json.dumps(key) for key in repeated),
            code="invalid_body")
    return value


def _refuse_constant(name):
    """Refuse NaN and Infinity, which are not JSON whatever Python says."""
    raise ValueError(f"{name} is not allowed in JSON")


class _BodyTimeout(ServiceError):
    """The body stopped arriving before it was complete."""

    status = 408
    code = "request_timeout"


def _read_body(stream, size, chunked=False):
    """Read at most size bytes of a body; a body cut short is a 4xx.

    The server in front normally hands over whole bodies; these errors
    are for one that does not (or a client that stalls on it).
    """
    try:
        return stream.read(size)
    except TimeoutError:
        raise _BodyTimeout("the request body stopped arriving before it "
                           "was complete") from None
    except ValueError as error:
        # cheroot's chunked reader says what is malformed this way.
        if not chunked:
            raise
        raise InvalidInput(f"malformed chunked body: {error}",
                           code="malformed_chunked") from None


def _too_large(limit):
    """Return the error for a body over limit bytes."""
    return PayloadTooLarge(f"request body is larger than {limit} bytes",
                           code="body_too_large")
