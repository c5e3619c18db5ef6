"""Read request bodies within their limits and parse JSON or text from them.

Bottle reads a whole body, however large, into memory or a temporary file
the first time it is touched; :func:`read_bounded_body` reads at most the
route's limit instead, so an oversized upload is refused after limit + 1
bytes whether it comes with a Content-Length or chunked.
"""

import io
import json

import multipart

from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

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
        data = stream.read(limit + 1)
    elif length:
        if not length.isdigit():
            raise InvalidInput("Content-Length must be a number",
                               code="invalid_content_length")
        if int(length) > limit:
            raise _too_large(limit)
        data = stream.read(int(length))
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
    try:
        value = json.loads(data.decode("utf-8"),
                           parse_constant=_refuse_constant)
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
        return data.decode(charset)
    except (LookupError, UnicodeDecodeError) as error:
        raise InvalidInput(f"body is not valid {charset} text: {error}",
                           code="invalid_text") from None


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


def _refuse_constant(name):
    """Refuse NaN and Infinity, which are not JSON whatever Python says."""
    raise ValueError(f"{name} is not allowed in JSON")


def _too_large(limit):
    """Return the error for a body over limit bytes."""
    return PayloadTooLarge(f"request body is larger than {limit} bytes",
                           code="body_too_large")
