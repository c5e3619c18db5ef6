"""Score one input: read or fetch its bytes, run the service's pipeline.

Every failure of one input becomes its result's error code, the same
code the service would answer with, so that a bad file or a dead URL
never stops the run.
"""

import logging

from app.batch.results import Result
from app.errors import InvalidInput, NotFound, ServiceError
from app.inference.pipeline import predict

log = logging.getLogger(__name__)


class Scorer:
    """Turn an input into a result with one model version and top_k."""

    def __init__(self, model, top_k, limits, fetch_policy):
        """Keep the model and the limits; ``fetch_policy`` None bars URLs."""
        self.model = model
        self.top_k = top_k
        self.limits = limits
        self.fetch_policy = fetch_policy

    def __call__(self, item):
        """Return the result of one input; never raise for a bad input."""
        try:
            data = (self._fetch(item.source) if item.is_url
                    else read_image_file(item.source,
                                         self.limits.max_image_bytes))
            (classes,) = predict(self.model, [data], self.top_k, self.limits)
        except ServiceError as error:
            return Result(item.source, error=error.code,
                          message=_one_line(error.message))
        except Exception as error:
            # A bug must not cost the other inputs their rows; the
            # traceback goes to the log, as the service does for a 500.
            log.exception("scoring %s failed", item.source)
            return Result(item.source, error="internal_error",
                          message=_one_line(f"{type(error).__name__}: "
                                            f"{error}"))
        return Result(item.source, self.model.version, tuple(classes))

    def _fetch(self, url):
        """Return the body of an image URL, under the service's rules."""
        if self.fetch_policy is None:
            raise InvalidInput("URL inputs are turned off by the settings "
                               "(fetch_enabled)", code="url_not_allowed")
        # Imported on first use: a run over files never needs urllib3.
        from app.fetch.client import fetch
        return fetch(url, self.fetch_policy)


def read_image_file(path, max_bytes):
    """Return a file's bytes, reading at most one byte over ``max_bytes``.

    The decoder refuses an image over the limit by its length; reading
    no further keeps a huge file from filling memory first.
    """
    try:
        with open(path, "rb") as handle:
            return handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file",
                       code="file_not_found") from None
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read the file: "
                           f"{error.strerror or error}",
                           code="file_unreadable") from None


def _one_line(text):
    """Return text on one line, so that every row is one line."""
    return " ".join(str(text).split())
