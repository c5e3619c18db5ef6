"""Read images from TF Serving's JSON row format: base64 or URL instances.

``{"instances": [{"b64": "..."}, {"url": "https://..."}]}``, optionally with
TF Serving's ``"signature_name"``, which is accepted and ignored since the
model has one signature. Every instance is checked before anything is
fetched, so a malformed last instance costs no download.
"""

from app.errors import InvalidInput, PayloadTooLarge
from app.inference.decoding import decode_base64

_BODY_KEYS = {"instances", "signature_name"}
_SOURCES = ("b64", "url")


def check_batch_size(count, max_batch_size):
    """Refuse an empty batch and one over the configured size."""
    if count == 0:
        raise InvalidInput("send at least one image", code="missing_image")
    if count > max_batch_size:
        raise PayloadTooLarge(
            f"{count} images in one request; the limit is {max_batch_size}",
            code="batch_too_large")


def read_instances(body, max_batch_size, max_image_bytes, fetch_policy,
                   fetcher=None):
    """Return the encoded image bytes of every instance, in order.

    ``fetch_policy`` None means URL instances are turned off; ``fetcher``
    None means :func:`app.inference.fetching.fetch`.
    """
    unknown = sorted(set(body) - _BODY_KEYS)
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}",
                           code="unknown_field")
    instances = body.get("instances")
    if not isinstance(instances, list):
        raise InvalidInput('"instances" must be a list of objects',
                           code="invalid_instances")
    check_batch_size(len(instances), max_batch_size)
    sources = [_source_of(number, instance)
               for number, instance in enumerate(instances)]
    if fetch_policy is None and any(kind == "url" for kind, _ in sources):
        raise InvalidInput("URL instances are turned off on this server",
                           code="url_not_allowed")
    if fetcher is None:
        # Imported on first use: urllib3 adds about 25 ms to every start
        # of a service that may never be sent a URL.
        from app.inference.fetching import fetch as fetcher
    return [decode_base64(value, max_image_bytes) if kind == "b64"
            else fetcher(value, fetch_policy)
            for kind, value in sources]


def _source_of(number, instance):
    """Return ``(kind, value)`` of one instance, or raise InvalidInput."""
    if (not isinstance(instance, dict) or len(instance) != 1
            or next(iter(instance)) not in _SOURCES
            or not isinstance(next(iter(instance.values())), str)):
        raise InvalidInput(
            f'instance {number} must be {{"b64": "<base64>"}} or '
            '{"url": "<http(s) URL>"}', code="invalid_instances")
    return next(iter(instance.items()))
