"""Prediction and model-metadata routes: parse, call the pipeline, render."""

import bottle

from app.errors import InvalidInput, UnsupportedMediaType
from app.fetch.policy import FetchPolicy
from app.inference.pipeline import ImageLimits, check_batch_size, predict
from app.web.bodies import (
    is_json_type, media_type, parse_json_object, read_multipart_files)
from app.web.instances import read_instances
from app.web.plugins import body_limit

# "image" is the documented field; "file" is what many upload forms and
# HTTP tools name a file field by default.
IMAGE_FIELDS = ("image", "file")
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp",
                         "image/gif", "image/bmp"})


class PredictRoutes:
    """Handlers of /predict/model[/v<N>] and /models[/v<N>]."""

    def __init__(self, registry, settings):
        """Keep the registry and derive the per-request limits once."""
        self.registry = registry
        self.settings = settings
        self.limits = ImageLimits.from_settings(settings)
        self.fetch_policy = FetchPolicy(
            allow_private=settings.fetch_allow_private,
            connect_timeout=settings.fetch_connect_timeout,
            read_timeout=settings.fetch_read_timeout,
            total_timeout=settings.fetch_total_timeout,
            max_redirects=settings.fetch_max_redirects,
            max_bytes=settings.max_image_bytes,
        ) if settings.fetch_enabled else None

    def install(self, app):
        """Add the prediction and model routes to a Bottle app."""
        limit = body_limit(self.settings.max_upload_bytes)
        app.route("/predict/model", "POST", self.predict, **limit)
        app.route("/predict/model/v<version:int>", "POST", self.predict,
                  **limit)
        app.route("/models", "GET", self.list_versions)
        app.route("/models/v<version:int>", "GET", self.describe_version)

    def predict(self, version=None):
        """Classify the request's images with one model version."""
        model = self.registry.get(version)
        top_k = _top_k(self.settings.default_top_k, len(model.labels))
        predictions = predict(model, self._images(), top_k, self.limits)
        return {"model": {"name": model.name, "version": model.version},
                "predictions": [{"classes": classes}
                                for classes in predictions]}

    def list_versions(self):
        """Describe the model and every version of it."""
        return self.registry.describe()

    def describe_version(self, version):
        """Describe one version of the model."""
        return self.registry.find(version).describe()

    def _images(self):
        """Return the encoded images of the request, whatever its form."""
        request = bottle.request
        kind = media_type(request.content_type)
        if kind == "multipart/form-data":
            # Bottle lower-cases request.content_type, but a multipart
            # boundary is case-sensitive: read the header as sent.
            images = read_multipart_files(
                request.get_header("Content-Type", ""), request.body.read(),
                IMAGE_FIELDS, self.settings.max_batch_size)
            if not images:
                raise InvalidInput(
                    "send at least one image, as a multipart field named "
                    '"image"', code="missing_image")
            check_batch_size(len(images), self.settings.max_batch_size)
            return images
        if kind in IMAGE_TYPES:
            return [request.body.read()]
        if is_json_type(kind):
            body = parse_json_object(kind, request.body.read())
            return read_instances(
                body, self.settings.max_batch_size,
                self.settings.max_image_bytes, self.fetch_policy)
        raise UnsupportedMediaType(
            "send images as multipart/form-data fields named image, as a "
            "raw image/jpeg|png|webp|gif|bmp body, or as JSON "
            '{"instances": [{"b64": ...} | {"url": ...}]}')


def _top_k(default, class_count):
    """Return the top_k query parameter, checked against the class count."""
    raw = bottle.request.query.get("top_k")
    if raw is None or raw == "":
        return min(default, class_count)
    if not raw.isdigit() or not 1 <= int(raw) <= class_count:
        raise InvalidInput(f"top_k must be an integer from 1 to "
                           f"{class_count}", code="invalid_top_k")
    return int(raw)
