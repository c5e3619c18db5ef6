"""TF Serving REST handlers: find the model version, run the verb, render.

Paths here are relative to the mount point, /v1. TF Serving matches a
path with one case-insensitive pattern, then dispatches on the verb as
written: ``:predict`` runs, ``:PREDICT`` is a malformed request. The
routes below take any verb and refuse it in the same way.
"""

import warnings

import bottle

from app.errors import InvalidInput, NotFound
from app.inference.pipeline import ImageLimits, prepare_image
from app.inference.postprocessing import get_classes, to_probabilities
from app.inference.preprocessing import stack
from app.models.registry import LabelNotFound
from app.web.access import scope
from app.web.bodies import parse_json_object
from app.web.plugins import body_limit
from app.web.tfserving import documents
from app.web.tfserving.inputs import (
    check_signature, read_examples, read_predict)

_MODEL = "/models/<name:re:[^/:]+>"
_TARGETS = ("", "/versions/<version:re:[0-9]+>", "/labels/<label:re:[^/:]+>")
# The colon is escaped: Bottle would read ":verb" as a wildcard.
_VERB = r"\:<verb:re:[A-Za-z]+>"
_MAX_VERSION = 2 ** 63 - 1  # versions are int64 in TF Serving


def malformed():
    """Return TF Serving's error for a path or verb it does not serve."""
    request = bottle.request
    return InvalidInput(f"Malformed request: {request.method} "
                        f"{request.fullpath}", code="malformed_request")


class TFServingRoutes:
    """Handlers of /v1/models/...: status, metadata, predict, classify."""

    def __init__(self, registry, settings, limits=None):
        """Keep the registry and derive the per-request limits once.

        ``limits`` are the process's shared image limits (its decode
        budget included).
        """
        self.registry = registry
        self.settings = settings
        self.limits = limits or ImageLimits.from_settings(settings)

    def install(self, app):
        """Add the TF Serving routes to the sub-application."""
        predict = scope("predict")
        limit = {**body_limit(self.settings.max_upload_bytes), **predict}
        with warnings.catch_warnings():
            # Bottle 0.13 warns of its old ":name" syntax even where the
            # colon is escaped, that is a literal colon.
            warnings.filterwarnings("ignore", "(?s).*old route syntax",
                                    DeprecationWarning)
            for target in _TARGETS:
                app.route(_MODEL + target, "GET", self.status, **predict)
                app.route(_MODEL + target + "/metadata", "GET",
                          self.metadata, **predict)
                app.route(_MODEL + target + _VERB, "POST", self.run,
                          **limit)

    def status(self, name, version=None, label=None):
        """Give the state of every version, or of the one addressed."""
        self._check_name(name, "Could not find any versions of model "
                         f"{name}")
        if label is not None:
            versions = [self._labelled(label)]
        elif version is not None:
            versions = [self.registry.find(_number(version))]
        else:
            found = self.registry.versions
            versions = [found[number] for number in sorted(found)]
        return documents.model_status(versions)

    def metadata(self, name, version=None, label=None):
        """Describe the signature of the version addressed."""
        return documents.model_metadata(self._model(name, version, label))

    def run(self, name, verb, version=None, label=None):
        """Run predict, classify or regress on the version addressed."""
        handler = {"predict": self._predict, "classify": self._classify,
                   "regress": self._regress}.get(verb)
        if handler is None:
            raise malformed()
        body = parse_json_object("application/json",
                                 bottle.request.body.read())
        model = self._model(name, version, label)
        check_signature(body)
        return handler(model, body)

    def _predict(self, model, body):
        """Answer rows with "predictions", columns with "outputs"."""
        request = read_predict(body, model.contract,
                               self.settings.max_batch_size,
                               self.limits.max_image_bytes)
        batch = (request.tensor if request.images is None
                 else self._prepare(model, request.images))
        probabilities = self._probabilities(model, batch)
        return {"outputs" if request.columnar else "predictions":
                probabilities.tolist()}

    def _classify(self, model, body):
        """Answer each example's top classes as [label, score] pairs."""
        name = model.contract.input_name
        images = read_examples(body, (name, name + "_bytes"),
                               self.settings.max_batch_size,
                               self.limits.max_image_bytes)
        probabilities = self._probabilities(
            model, self._prepare(model, images))
        top_k = min(self.settings.default_top_k, len(model.labels))
        return {"results": [
            [[item["label"], item["score"]]
             for item in get_classes(row, top_k, model.labels)]
            for row in probabilities]}

    def _regress(self, model, body):
        """Refuse, as TF Serving does for a model with no regression."""
        raise InvalidInput(
            "Expected regression signature method_name to be "
            "tensorflow/serving/regress. Was: "
            f"{documents.PREDICT_METHOD}", code="not_a_regression_model")

    def _prepare(self, model, images):
        """Return encoded images decoded and pre-processed as one batch."""
        return stack([prepare_image(image, model.contract.input, self.limits)
                      for image in images])

    def _probabilities(self, model, batch):
        """Return the model's class probabilities for a batch, as float32."""
        scores = to_probabilities(model.run(batch), model.contract.activation)
        return scores.astype("float32")

    def _model(self, name, version, label):
        """Return the available version a path addresses."""
        self._check_name(name, f"Servable not found for request: "
                         f"Latest({name})")
        if label is not None:
            return self._labelled(label)
        return self.registry.get(None if version is None
                                 else _number(version))

    def _labelled(self, label):
        """Return the version a label names; an unknown label is a 400."""
        try:
            return self.registry.get_label(label)
        except LabelNotFound as error:
            raise InvalidInput(error.message, code=error.code) from None

    def _check_name(self, name, message):
        """Refuse a model name this server does not serve."""
        if name != self.registry.name:
            raise NotFound(message, code="model_not_found")


def _number(version):
    """Return a path's version as a number, as TF Serving converts it."""
    if len(version) > 19 or int(version) > _MAX_VERSION:
        raise InvalidInput(f"Failed to convert version: {version} to "
                           "numeric.", code="invalid_version")
    return int(version)
