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
import re
import sys
import time
import uuid

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
ACCESS_LOGGER = "access"
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}\Z")


def request_id_from(header):
    """Return the client's request id if it is sane, else a new one."""
    if header and _SANE_ID.match(header):
        return header
    return uuid.uuid4().hex


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
    access = logging.StreamHandler(sys.stdout)
    for handler in (errors, access):
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
    root.addHandler(errors)
    access_logger = logging.getLogger(ACCESS_LOGGER)
    access_logger.propagate = False
    access_logger.handlers[:] = [access]


def log_access(fields):
    """Write one access line: the fields of an answered request."""
    logging.getLogger(ACCESS_LOGGER).info("", extra={"access": fields})


def _timestamp(created):
    """Return an ISO 8601 UTC time with milliseconds."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"
