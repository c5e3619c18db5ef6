"""Domain errors that carry their HTTP status and a stable error code.

Domain code raises these; the web layer renders every one of them as
``{"error": {"code": ..., "message": ...}}`` with the status it carries,
so no module outside ``app.web`` needs to know about HTTP responses.
"""


class ServiceError(Exception):
    """Base class of every error the service reports to a client."""

    status = 500
    code = "internal_error"

    def __init__(self, message, code=None, headers=None):
        """Keep a human sentence and, optionally, a more specific code.

        ``headers`` go out with the error's response (e.g. Retry-After).
        """
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        if code is not None:
            self.code = code


class InvalidInput(ServiceError):
    """The request is well-formed HTTP but its content is not valid."""

    status = 400
    code = "invalid_input"


class NotFound(ServiceError):
    """The addressed resource does not exist."""

    status = 404
    code = "not_found"


class Conflict(ServiceError):
    """The request clashes with the current state of the resource."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ServiceError):
    """A body, image, pixel count or batch is over its configured limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    """The body's content type is not one this route accepts."""

    status = 415
    code = "unsupported_media_type"


class Unavailable(ServiceError):
    """A dependency (store, model) cannot serve the request right now."""

    status = 503
    code = "unavailable"
