"""Triton's model repository extension: index, load and unload over /v2.

``tritonclient``'s ``get_model_repository_index``, ``load_model`` and
``unload_model`` work unchanged. Loads and unloads are serialized by the
repository watcher, and idempotent: a load asked for while another runs
waits for it rather than loading a second time.
"""

import bottle

from app.errors import InvalidInput, NotFound
from app.models.registry import AVAILABLE, FAILED, LOADING
from app.models.repository import version_folders
from app.web.access import scope
from app.web.bodies import parse_json_object
from app.web.plugins import dumps

EXTENSION = "model_repository"
# Triton's names for the states of a model version.
_STATES = {AVAILABLE: "READY", LOADING: "LOADING", FAILED: "UNAVAILABLE"}


class RepositoryRoutes:
    """Handlers of /v2/repository: what the repository holds, and loads."""

    def __init__(self, registry, repository):
        """Serve ``registry``, whose versions come from ``repository``."""
        self.registry = registry
        self.repository = repository
        # The name stays known while every version is unloaded.
        self.model_name = registry.name

    def install(self, app):
        """Add the repository routes to the V2 sub-application."""
        admin = scope("admin")
        app.route("/repository/index", "POST", self.index, **admin)
        app.route("/repository/models/<name>/load", "POST", self.load,
                  **admin)
        app.route("/repository/models/<name>/unload", "POST", self.unload,
                  **admin)

    def index(self):
        """List every version in the repository with its state."""
        body = self._options()
        if not isinstance(body.get("ready", False), bool):
            raise InvalidInput('"ready" must be true or false',
                               code="invalid_body")
        loaded = self.registry.versions
        entries = []
        for number in sorted(set(loaded) | set(version_folders(
                self.repository))):
            version = loaded.get(number)
            state = _STATES.get(version.state, "UNAVAILABLE") if version \
                else "UNAVAILABLE"
            if body.get("ready") and state != "READY":
                continue
            entries.append({
                "name": self.model_name, "version": str(number),
                "state": state,
                "reason": (version.error if version else "not loaded")})
        return bottle.HTTPResponse(dumps(entries), 200, {
            "Content-Type": "application/json"})

    def load(self, name):
        """Load every version of the model now; return when they settle."""
        self._options()
        self._watcher(name).load()
        self.registry.wait_until_loaded(self.registry.wait_timeout)
        return ""

    def unload(self, name):
        """Stop serving every version of the model until the next load."""
        self._options()
        self._watcher(name).unload()
        return ""

    def _watcher(self, name):
        """Return the repository watcher, if the name is this model's."""
        if name != self.model_name:
            raise NotFound(f"unknown model {name!r}; this server serves "
                           f"{self.model_name!r}", code="model_not_found")
        if self.registry.watcher is None:
            raise InvalidInput("this registry does not follow a repository",
                               code="repository_unavailable")
        return self.registry.watcher

    def _options(self):
        """Return the request's optional JSON object (Triton sends none)."""
        data = bottle.request.body.read()
        if not data:
            return {}
        return parse_json_object(
            bottle.request.content_type or "application/json", data)
