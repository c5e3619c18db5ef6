"""The errors a fetch raises, worded and coded in one place."""

from app.errors import InvalidInput, PayloadTooLarge


def refuse(reason):
    """Raise the error for a URL that may not be fetched."""
    raise InvalidInput(reason, code="url_not_allowed")


def fetch_failed(reason):
    """Return the error for a URL that could not be fetched."""
    return InvalidInput(reason, code="url_fetch_failed")


def too_large(policy):
    """Return the error for a body over the policy's byte limit."""
    return PayloadTooLarge(
        f"the image at the URL is larger than {policy.max_bytes} bytes",
        code="image_too_large")
