"""Build what a batch run needs from the service's settings.

The registry, image limits and fetch policy are made from the same
settings (``setup.cfg``, ``APP_`` variables, ``--config``) as the
server's, so a batch run scores exactly as the service would, with one
single-thread interpreter per worker.
"""

import dataclasses

from app.assembly import build_registry
from app.fetch.policy import FetchPolicy
from app.inference.decoding import configure_pillow
from app.inference.pipeline import ImageLimits
from app.settings import load_settings


@dataclasses.dataclass
class BatchService:
    """The loaded model version and the rules every input is scored by."""

    settings: object
    registry: object
    model: object
    limits: ImageLimits
    fetch_policy: FetchPolicy | None

    def close(self):
        """Release the registry's interpreters and threads."""
        self.registry.close()


def batch_settings(workers, model_version=None, config_path=None):
    """Return the settings, with one interpreter per worker.

    The extra many-thread interpreter the server keeps for lone requests
    is turned off: every worker runs, so it would only take cores from
    the others.
    """
    overrides = {"interpreters": workers, "lone_request_threads": 0,
                 "model_poll_seconds": 0}
    if model_version is not None:
        overrides["default_model_version"] = model_version
    sources = {"default_model_version": "--model-version",
               "interpreters": "--workers"}
    return load_settings(config_path, overrides=overrides,
                         override_sources=sources)


def fetch_policy(settings):
    """Return the URL rules settings give, or None when URLs are off."""
    if not settings.fetch_enabled:
        return None
    return FetchPolicy(
        allow_private=settings.fetch_allow_private,
        connect_timeout=settings.fetch_connect_timeout,
        read_timeout=settings.fetch_read_timeout,
        total_timeout=settings.fetch_total_timeout,
        max_redirects=settings.fetch_max_redirects,
        max_bytes=settings.max_image_bytes)


def open_service(settings):
    """Load the model version to score with, its interpreters all made."""
    configure_pillow(settings.max_image_pixels)
    registry = build_registry(settings, background=False)
    try:
        model = registry.get()
        # An interpreter's first run sets up its kernels; done here,
        # before the clock starts, no image of the run pays for it.
        model.pool.fill()
    except BaseException:
        registry.close()
        raise
    return BatchService(settings, registry, model,
                        ImageLimits.from_settings(settings),
                        fetch_policy(settings))
