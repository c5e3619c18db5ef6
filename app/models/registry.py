"""Versions of the served model, their states, and lookup by number.

A version is ``LOADING`` until its loader settles it as ``AVAILABLE`` or
``FAILED``. A request for a version still loading waits for it (within
the registry's wait timeout), so clients see a slower first answer, never
an error; ``loading`` decides which versions load when.
"""

import dataclasses
import threading

from app.errors import NotFound, Unavailable
from app.inference.batching import DynamicBatcher
from app.inference.runtime import InterpreterPool
from app.models.contract import ModelContract

LOADING = "LOADING"
AVAILABLE = "AVAILABLE"
FAILED = "FAILED"


class ModelVersionNotFound(NotFound):
    """No version with that number exists."""

    code = "model_version_not_found"


@dataclasses.dataclass
class ModelVersion:
    """One version: its contract, labels, state and interpreters."""

    version: int
    contract: ModelContract | None
    state: str
    labels: list = dataclasses.field(default_factory=list)
    pool: InterpreterPool = None
    batcher: DynamicBatcher = None
    error: str = ""
    settled: threading.Event = dataclasses.field(
        default_factory=threading.Event, repr=False, compare=False)

    def __post_init__(self):
        """Mark a version that is not loading as settled."""
        if self.state != LOADING:
            self.settled.set()

    def settle(self, loaded):
        """Take the outcome of a load and wake the requests waiting on it."""
        self.labels, self.pool, self.batcher = (
            loaded.labels, loaded.pool, loaded.batcher)
        self.contract, self.error = loaded.contract, loaded.error
        self.state = loaded.state
        self.settled.set()

    @property
    def name(self):
        """Return the model's name as model.json gives it."""
        return self.contract.name if self.contract else ""

    def run(self, batch):
        """Return the model's output for a batch, batched with others if on."""
        return (self.batcher or self.pool).run(batch)

    def close(self):
        """Stop the version's batch threads, if it has any."""
        if self.batcher is not None:
            self.batcher.close()

    def describe(self):
        """Return the version's state and model.json as JSON-ready data."""
        described = {"version": self.version, "state": self.state,
                     "metadata": self.contract.document
                     if self.contract else {}}
        if self.error:
            described["error"] = self.error
        return described


class ModelRegistry:
    """All versions of the model, and which one is served by default."""

    def __init__(self, versions, default_version, wait_timeout=30.0):
        """Take versions ``{number: ModelVersion}``, loaded or loading."""
        self.versions = versions
        self.default_version = default_version
        self.wait_timeout = wait_timeout
        self._loader = None
        self._closing = threading.Event()

    @property
    def name(self):
        """Return the name of the default version's model."""
        return self.versions[self.default_version].name

    def find(self, version=None):
        """Return a version whatever its state (the default one for None)."""
        number = self.default_version if version is None else version
        found = self.versions.get(number)
        if found is None:
            raise ModelVersionNotFound(
                f"model version {number} does not exist; versions: "
                f"{', '.join(map(str, sorted(self.versions)))}")
        return found

    def get(self, version=None):
        """Return an available version (the default one for None).

        A version still loading is waited for, within the wait timeout.
        """
        found = self.find(version)
        if not found.settled.wait(self.wait_timeout):
            raise Unavailable(
                f"model version {found.version} is still loading",
                code="model_loading")
        if found.state != AVAILABLE:
            raise Unavailable(
                f"model version {found.version} failed to load",
                code="model_unavailable")
        return found

    def check_ready(self):
        """Raise unless the default version is available."""
        self.get()

    def all_available(self):
        """Tell whether every version has loaded and can serve."""
        return all(version.state == AVAILABLE
                   for version in self.versions.values())

    def load_in_background(self, work):
        """Run ``work(closing_event)`` in the loader thread."""
        self._loader = threading.Thread(
            target=work, args=(self._closing,), name="model-loader",
            daemon=True)
        self._loader.start()

    def wait_until_loaded(self, timeout=None):
        """Return True once every version has settled, False on timeout."""
        if self._loader is not None:
            self._loader.join(timeout)
            return not self._loader.is_alive()
        return True

    def close(self):
        """Stop loading and every version's batch threads."""
        self._closing.set()
        # Creating one interpreter takes tens of milliseconds, so the
        # loader sees the flag soon; it is a daemon in case it does not.
        self.wait_until_loaded(self.wait_timeout)
        for version in self.versions.values():
            version.close()

    def describe(self):
        """Return the model's name, default version and every version."""
        return {"name": self.name, "default_version": self.default_version,
                "versions": [self.versions[number].describe()
                             for number in sorted(self.versions)]}
