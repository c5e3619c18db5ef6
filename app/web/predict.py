"""Prediction and model-metadata routes: parse, call the pipeline, render."""

import time

import bottle

from app.errors import InvalidInput, ServiceError, UnsupportedMediaType
from app.fetch.policy import FetchPolicy
from app.inference.pipeline import ImageLimits, check_batch_size, predict
from app.ops.request_log import REQUEST_ID
from app.web.access import scope
from app.web.bodies import (
    is_json_type, media_type, parse_ascii_integer, parse_json_object,
    read_multipart_files)
from app.web.instances import read_instances
from app.web.operations import SERVED_KEY
from app.web.plugins import body_limit

# ASCII digits only (Bottle's int filter takes any script's digits), and
# few enough that int() is cheap.
VERSION = "[0-9]{1,10}"
# Requests with the same value get the same variant of a traffic split.
VARIANT_HEADER = "X-Variant-Key"
# "image" is the documented field; "file" is what many upload forms and
# HTTP tools name a file field by default.
IMAGE_FIELDS = ("image", "file")
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp",
                         "image/gif", "image/bmp"})


class PredictRoutes:
    """Handlers of /predict/model[/v<N>] and /models[/v<N>]."""

    def __init__(self, registry, settings, prediction_log=None,
                 metrics=None, limits=None):
        """Keep the registry and derive the per-request limits once.

        ``limits`` are the process's shared image limits (its decode
        budget included); None derives them from settings.
        """
        self.registry = registry
        self.prediction_log = prediction_log
        self.metrics = metrics
        self.settings = settings
        self.limits = limits or ImageLimits.from_settings(settings)
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
        limit = {**body_limit(self.settings.max_upload_bytes),
                 **scope("predict")}
        app.route("/predict/model", "POST", self.predict, **limit)
        app.route(f"/predict/model/v<version:re:{VERSION}>", "POST",
                  self.predict, **limit)
        app.route("/predict/model/<label:re:[A-Za-z][A-Za-z0-9_-]*>", "POST",
                  self.predict, **limit)
        app.route("/models", "GET", self.list_versions, **scope("predict"))
        app.route(f"/models/v<version:re:{VERSION}>", "GET",
                  self.describe_version, **scope("predict"))

    def predict(self, version=None, label=None):
        """Classify the request's images with the version asked for.

        Without a version or label, the traffic weights pick a label,
        the same one for the same ``X-Variant-Key``.
        """
        started = time.monotonic()
        model, label = self.registry.resolve(
            None if version is None else int(version), label,
            bottle.request.get_header(VARIANT_HEADER))
        served = {"name": model.name, "version": model.version}
        if label is not None:
            served["label"] = label
        # The access log and the metrics say which version answered.
        bottle.request.environ[SERVED_KEY] = served
        try:
            top_k = _top_k(self.settings.default_top_k, len(model.labels))
            images = self._images()
            predictions = predict(
                model, images, top_k, self.limits,
                self.metrics.observe_decode if self.metrics else None)
        except ServiceError as error:
            self._count(served, error.code)
            raise
        self._count(served, "ok", len(images))
        log = self.prediction_log
        if log is not None and log.sampled():
            log.record(images, predictions, model, label, REQUEST_ID.get(),
                       time.monotonic() - started)
        bottle.response.set_header("X-Model-Version", str(model.version))
        return {"model": served,
                "predictions": [{"classes": classes}
                                for classes in predictions]}

    def _count(self, served, outcome, images=1):
        """Count the images of one prediction request by outcome."""
        if self.metrics is not None:
            self.metrics.count_predictions(
                served["name"], served["version"], served.get("label"),
                outcome, images)

    def list_versions(self):
        """Describe the model and every version of it."""
        return self.registry.describe()

    def describe_version(self, version):
        """Describe one version of the model."""
        return self.registry.find(int(version)).describe()

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
    top_k = parse_ascii_integer(raw)
    if top_k is None or not 1 <= top_k <= class_count:
        raise InvalidInput(f"top_k must be an integer from 1 to "
                           f"{class_count}", code="invalid_top_k")
    return top_k
