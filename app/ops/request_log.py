"""Logs that name their request: request ids, JSON lines, access lines.

Every request has an id: the client's ``X-Request-ID`` if it is sane
(bounded length and charset), a new random one otherwise. While a
request is handled its id is in a context variable, and a logging filter
adds it to every record written meanwhile, warnings and tracebacks
included. The access log writes one line per request on stdout; the
format is JSON lines (for log collectors) or plain text (for a terminal).
"""

import contextvars
import json
import logging
import os
import re
import sys
import threading
import time

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
ACCESS_LOGGER = "access"
_ACCESS_LOG = logging.getLogger(ACCESS_LOGGER)
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}\Z")
# RFC 4122's version (4) and variant (10) bits of a random UUID.
_UUID4_KEEP = ~(0xf000 << 64 | 0xc000 << 48)
_UUID4_SET = 0x4000 << 64 | 0x8000 << 48
_IDS_PER_READ = 64


def request_id_from(header):
    """Return the client's request id if it is sane, else a new one."""
    if header and _SANE_ID.match(header):
        return header
    return _new_id()


class _RandomBytes(threading.local):
    """Bytes of os.urandom read ahead, a buffer per thread.

    One read for many ids: each read is a system call, for which the
    thread gives up the GIL and then waits to take it back.
    """

    data = b""
    used = 0

    def take(self, size):
        """Return the next size random bytes."""
        if self.used + size > len(self.data):
            self.data, self.used = os.urandom(size * _IDS_PER_READ), 0
        self.used += size
        return self.data[self.used - size:self.used]


def _new_id():
    """Return a random id: the hex form of a version 4 UUID.

    What ``uuid.uuid4().hex`` returns, without building a UUID object.
    """
    bits = int.from_bytes(_random_bytes.take(16), "big")
    bits = bits & _UUID4_KEEP | _UUID4_SET
    return f"{bits:032x}"


def _forget_random_bytes():
    """Drop the bytes read ahead, so that no two processes share them."""
    global _random_bytes
    _random_bytes = _RandomBytes()


_random_bytes = _RandomBytes()
os.register_at_fork(after_in_child=_forget_random_bytes)


class RequestIdFilter(logging.Filter):
    """Give every log record the id of the request being handled."""

    def filter(self, record):
        """Add ``request_id`` to the record; keep every record."""
        record.request_id = REQUEST_ID.get()
        return True


class JsonLinesFormatter(logging.Formatter):
    """Write each record as one JSON object on one line."""

    def format(self, record):
        """Return the record as a JSON line."""
        line = {"time": _timestamp(record.created),
                "level": record.levelname.lower(), "logger": record.name,
                "request_id": getattr(record, "request_id", "-")}
        access = getattr(record, "access", None)
        if access is not None:
            line.update(access)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line)


class AccessLineHandler(logging.StreamHandler):
    """A stream handler that also writes an access line from its fields.

    While the access logger is set up as :func:`configure_logging` leaves
    it, :func:`log_access` hands the fields straight to
    :meth:`write_fields`: the line is the one the logging module would
    write, without the LogRecord, the filter and the generic formatting it
    would build for each request on the way.
    """

    def takes_fields(self):
        """Tell whether write_fields writes what handling a record would."""
        filters = self.filters
        return (self.level <= logging.INFO
                and type(self.formatter) is JsonLinesFormatter
                and len(filters) == 1 and type(filters[0]) is RequestIdFilter)

    def write_fields(self, fields):
        """Write the access line of fields as JsonLinesFormatter would."""
        try:
            line = {"time": _timestamp(time.time()), "level": "info",
                    "logger": ACCESS_LOGGER, "request_id": REQUEST_ID.get()}
            line.update(fields)
            text = json.dumps(line) + self.terminator
            with self.lock:
                self.stream.write(text)
                self.stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(_access_record(fields))


class TextFormatter(logging.Formatter):
    """Write each record as a line for people, request id included."""

    def __init__(self):
        """Use a time, level, logger, request id, message layout."""
        super().__init__("%(asctime)s %(levelname)s %(name)s "
                         "[%(request_id)s] %(message)s")

    def format(self, record):
        """Return the record as text; access records list their fields."""
        access = getattr(record, "access", None)
        if access is not None:
            record.msg = " ".join(f"{name}={value}" for name, value
                                  in access.items() if value is not None)
            record.args = ()
        return super().format(record)


def configure_logging(log_format="json", level=logging.INFO):
    """Send app logs to stderr and the access log to stdout, as asked.

    Process-wide: called once by the command line, never by the app.
    """
    formatter = (JsonLinesFormatter() if log_format == "json"
                 else TextFormatter())
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    errors = logging.StreamHandler(sys.stderr)
    access = AccessLineHandler(sys.stdout)
    for handler in (errors, access):
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
    root.addHandler(errors)
    access_logger = logging.getLogger(ACCESS_LOGGER)
    access_logger.propagate = False
    access_logger.handlers[:] = [access]


def log_access(fields):
    """Write one access line: the fields of an answered request."""
    logger = _ACCESS_LOG
    if not logger.isEnabledFor(logging.INFO):
        return
    handlers = logger.handlers
    if (len(handlers) == 1 and not logger.filters and not logger.propagate
            and type(handlers[0]) is AccessLineHandler
            and handlers[0].takes_fields()):
        handlers[0].write_fields(fields)
    else:
        logger.handle(_access_record(fields))


def _access_record(fields):
    """Return the log record of an access line.

    Made here rather than by ``info()``, which would walk the stack for
    the caller's file and line, which no access line shows.
    """
    return _ACCESS_LOG.makeRecord(
        ACCESS_LOGGER, logging.INFO, __file__, 0, "", (), None, "log_access",
        {"access": fields})


# The last second formatted, as (whole seconds, text): a busy service
# formats the same second hundreds of times.
_second = (None, "")


def _timestamp(created):
    """Return an ISO 8601 UTC time with milliseconds."""
    global _second
    whole = int(created)
    second = _second
    if second[0] != whole:
        second = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S",
                                                 time.gmtime(whole)))
    return f"{second[1]}.{int(created % 1 * 1000):03d}Z"
