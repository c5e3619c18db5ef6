"""Read images from TF Serving's JSON row format: base64 or URL instances.

``{"instances": [{"b64": "..."}, {"url": "https://..."}]}``, optionally with
TF Serving's ``"signature_name"``, which is accepted and ignored since the
model has one signature. Every instance is checked and every base64 image
decoded before anything is fetched, so a malformed instance costs no
download; the URLs of one request share one fetch deadline.
"""

from app.errors import InvalidInput
from app.inference.decoding import decode_base64
from app.inference.pipeline import check_batch_size

_BODY_KEYS = {"instances", "signature_name"}
_SOURCES = ("b64", "url")


def read_instances(body, max_batch_size, max_image_bytes, fetch_policy,
                   fetch_all=None):
    """Return the encoded image bytes of every instance, in order.

    ``fetch_policy`` None means URL instances are turned off;
    ``fetch_all`` None means :func:`app.fetch.client.fetch_all`.
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
    urls = [value for kind, value in sources if kind == "url"]
    if urls and fetch_policy is None:
        raise InvalidInput("URL instances are turned off on this server",
                           code="url_not_allowed")
    images = [decode_base64(value, max_image_bytes) if kind == "b64"
              else None for kind, value in sources]
    if urls:
        if fetch_all is None:
            # Imported on first use: urllib3 adds about 25 ms to every
            # start of a service that may never be sent a URL.
            from app.fetch.client import fetch_all
        fetched = iter(fetch_all(urls, fetch_policy))
        images = [next(fetched) if image is None else image
                  for image in images]
    return images


def _source_of(number, instance):
    """Return ``(kind, value)`` of one instance, or raise InvalidInput."""
    if (not isinstance(instance, dict) or len(instance) != 1
            or next(iter(instance)) not in _SOURCES
            or not isinstance(next(iter(instance.values())), str)):
        raise InvalidInput(
            f'instance {number} must be {{"b64": "<base64>"}} or '
            '{"url": "<http(s) URL>"}', code="invalid_instances")
    return next(iter(instance.items()))
