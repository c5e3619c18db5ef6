"""Open Inference Protocol (KServe V2) REST handlers: parse, run, render.

Paths here are relative to the mount point, /v2.
"""

import bottle

from app.errors import NotFound
from app.inference.pipeline import ImageLimits
from app.inference.postprocessing import to_probabilities
from app.models.registry import AVAILABLE
from app.web.bodies import parse_json_object
from app.web.kserve import binary
from app.web.kserve.responses import inference_response, model_metadata
from app.web.kserve.tensors import read_inference_request
from app.web.access import OPEN, scope
from app.web.plugins import body_limit, json_response

SERVER_NAME = "word-count-and-image-classification"
SERVER_VERSION = "1.0.0"
EXTENSIONS = ["binary_tensor_data", "classification", "model_repository"]
_MODEL = "/models/<name>"
_VERSION = "/models/<name>/versions/<version>"


def error_body(code, message):
    """Return the protocol's error shape, with the service's code beside."""
    return {"error": message, "code": code}


class KServeRoutes:
    """Handlers of /v2: health, server and model metadata, inference."""

    def __init__(self, registry, settings, draining=None, limits=None):
        """Keep the registry and derive the per-request limits once.

        Once ``draining`` (an Event) is set, the server is not ready;
        ``limits`` are the process's shared image limits.
        """
        self.registry = registry
        self.settings = settings
        self.draining = draining
        self.limits = limits or ImageLimits.from_settings(settings)

    def install(self, app):
        """Add the V2 routes to the sub-application."""
        app.route("/health/live", "GET", self.live, **scope(OPEN))
        app.route("/health/ready", "GET", self.ready, **scope(OPEN))
        app.route("/", "GET", self.server_metadata, **scope(OPEN))
        predict = scope("predict")
        limit = {**body_limit(self.settings.max_upload_bytes), **predict}
        for path in (_MODEL, _VERSION):
            app.route(path, "GET", self.metadata, **predict)
            app.route(path + "/ready", "GET", self.model_ready, **predict)
            app.route(path + "/infer", "POST", self.infer, **limit)

    def live(self):
        """Answer as long as the process can handle a request."""
        return {"live": True}

    def ready(self):
        """Tell whether every model version is ready; 400 means no."""
        ready = self.registry.all_available() and not (
            self.draining is not None and self.draining.is_set())
        return json_response(200 if ready else 400, {"ready": ready})

    def server_metadata(self):
        """Describe the server."""
        return {"name": SERVER_NAME, "version": SERVER_VERSION,
                "extensions": EXTENSIONS}

    def metadata(self, name, version=None):
        """Describe one model version's inputs and outputs."""
        return model_metadata(self._get(name, version),
                              sorted(self.registry.versions))

    def model_ready(self, name, version=None):
        """Tell whether one model version is ready; 400 means no."""
        ready = self._find(name, version).state == AVAILABLE
        return json_response(200 if ready else 400,
                             {"name": name, "ready": ready})

    def infer(self, name, version=None):
        """Run one V2 inference request on a model version."""
        model = self._get(name, version)
        request = bottle.request
        body, data = request.body.read(), b""
        # Triton's HTTP client sends its JSON without a Content-Type.
        content_type = request.content_type or "application/json"
        header = request.get_header(binary.HEADER)
        if header is not None:
            body, data = binary.split_body(body, header)
            # The body is JSON then tensors, whatever its media type says
            # (application/octet-stream from KServe's client).
            content_type = "application/json"
        inference = read_inference_request(
            parse_json_object(content_type, body), model, self.limits,
            self.settings.max_batch_size, data)
        probabilities = to_probabilities(model.run(inference.batch),
                                         model.contract.activation)
        response, binary_outputs = inference_response(
            model, inference.request_id, probabilities, inference.output)
        if not binary_outputs:
            return response
        payload, length = binary.frame(response, binary_outputs)
        return bottle.HTTPResponse(payload, 200, {
            binary.HEADER: str(length),
            "Content-Type": "application/octet-stream"})

    def _find(self, name, version):
        """Return a model version by V2 name and version, whatever its state.

        V2 versions are strings; this model's are the registry's integers.
        """
        if name != self.registry.name:
            raise NotFound(f"unknown model {name!r}; this server serves "
                           f"{self.registry.name!r}", code="model_not_found")
        if version is None:
            return self.registry.find()
        if not (version.isascii() and version.isdigit()):
            raise NotFound(f"unknown version {version!r} of model {name!r}",
                           code="model_version_not_found")
        return self.registry.find(int(version))

    def _get(self, name, version):
        """Return an available model version by V2 name and version."""
        return self.registry.get(self._find(name, version).version)
