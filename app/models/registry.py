"""Versions of the served model, their states, labels and lookup.

A version is ``LOADING`` until its loader settles it as ``AVAILABLE`` or
``FAILED``; a version whose folder is removed is ``UNLOADING`` while its
last requests finish. A request for a version still loading waits for it
(within the registry's wait timeout), so clients see a slower first
answer, never an error. The watcher (``watcher``) changes the set of
versions while requests read it: the registry swaps whole dicts, never
changes one in place, so a reader always sees a consistent set.
"""

import contextlib
import dataclasses
import threading

from app.errors import NotFound, Unavailable
from app.inference.batching import DynamicBatcher
from app.inference.runtime import InterpreterPool
from app.models.activity import PredictionActivity
from app.models.contract import ModelContract
from app.models.serving import ServingConfig, pick_label

LOADING = "LOADING"
AVAILABLE = "AVAILABLE"
FAILED = "FAILED"
UNLOADING = "UNLOADING"


class ModelVersionNotFound(NotFound):
    """No version with that number exists."""

    code = "model_version_not_found"


class LabelNotFound(NotFound):
    """No version carries that label."""

    code = "model_label_not_found"


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
    load_attempts: int = 0
    settled: threading.Event = dataclasses.field(
        default_factory=threading.Event, repr=False, compare=False)
    _running: int = dataclasses.field(default=0, repr=False, compare=False)
    _idle: threading.Condition = dataclasses.field(
        default_factory=threading.Condition, repr=False, compare=False)
    #: The registry's count of predictions running (set when it adopts
    #: the version), which background loading waits on.
    activity: PredictionActivity | None = dataclasses.field(
        default=None, repr=False, compare=False)

    def __post_init__(self):
        """Mark a version that is not loading as settled."""
        if self.state != LOADING:
            self.settled.set()

    def settle(self, loaded):
        """Take the outcome of a load and wake the requests waiting on it."""
        self.labels, self.pool, self.batcher = (
            loaded.labels, loaded.pool, loaded.batcher)
        self.contract, self.error = loaded.contract, loaded.error
        self.load_attempts = loaded.load_attempts
        self.state = loaded.state
        self.settled.set()

    @property
    def name(self):
        """Return the model's name as model.json gives it."""
        return self.contract.name if self.contract else ""

    def run(self, batch):
        """Return the model's output for a batch, batched with others if on.

        A version being unloaded still runs the requests that reached it.
        """
        with self._idle:
            self._running += 1
        try:
            runner = self.batcher if self.state == AVAILABLE else None
            with (self.activity.predicting() if self.activity is not None
                  else contextlib.nullcontext()):
                return (runner or self.pool).run(batch)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout):
        """Return True once no request runs on this version."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def close(self):
        """Stop the version's batch threads, if it has any.

        The interpreters are freed with the version object itself, when
        the last request holding it lets go: a request that looked the
        version up just before it was removed still runs on them.
        """
        if self.batcher is not None:
            self.batcher.close()

    def describe(self):
        """Return the version's state and model.json as JSON-ready data."""
        described = {"version": self.version, "state": self.state,
                     "metadata": self.contract.document
                     if self.contract else {}}
        if self.error:
            described["error"] = self.error
        if self.state != AVAILABLE:
            described["load_attempts"] = self.load_attempts
        return described


class ModelRegistry:
    """All versions of the model, their labels, and the default route.

    ``default_version`` 0 follows the highest AVAILABLE version; another
    number pins the default to that version.
    """

    def __init__(self, versions, default_version=0, wait_timeout=30.0):
        """Take versions ``{number: ModelVersion}``, loaded or loading."""
        #: Predictions running on any version; the loader waits on it.
        self.activity = PredictionActivity()
        for version in versions.values():
            version.activity = self.activity
        self.versions = dict(versions)
        self.pinned_version = default_version
        self.wait_timeout = wait_timeout
        self.serving = ServingConfig()
        self.serving_error = ""
        # The version each label served last, kept while the version a
        # label now names is still loading.
        self._served_labels = {}
        self._changing = threading.Lock()
        #: What loads and unloads versions (set by ``bootstrap``).
        self.watcher = None
        self._loader = None
        self._closing = threading.Event()

    @property
    def default_version(self):
        """Return the number of the version /predict/model serves."""
        if self.pinned_version:
            return self.pinned_version
        versions = self.versions
        available = [number for number, version in versions.items()
                     if version.state == AVAILABLE]
        return max(available or versions or [0])

    @property
    def name(self):
        """Return the name of the default version's model."""
        version = self.versions.get(self.default_version)
        return version.name if version else ""

    def find(self, version=None):
        """Return a version whatever its state (the default one for None)."""
        number = self.default_version if version is None else version
        found = self.versions.get(number)
        if found is None or found.state == UNLOADING:
            raise ModelVersionNotFound(
                f"model version {number} does not exist; versions: "
                f"{', '.join(map(str, self.numbers())) or 'none'}")
        return found

    def numbers(self):
        """Return the numbers of the versions that take requests, sorted."""
        return sorted(number for number, version in self.versions.items()
                      if version.state != UNLOADING)

    def get(self, version=None):
        """Return an available version (the default one for None).

        A version still loading is waited for, within the wait timeout.
        """
        return self._ready(self.find(version))

    def _ready(self, found):
        """Wait for a version to settle; raise unless it is available."""
        settled = found.settled.is_set()
        if not settled:
            # Told of the wait, the loader loads at once rather than
            # waiting for a lull in the predictions.
            with self.activity.waiting_for_load():
                settled = found.settled.wait(self.wait_timeout)
        if not settled:
            raise Unavailable(
                f"model version {found.version} is still loading",
                code="model_loading")
        if found.state != AVAILABLE:
            raise Unavailable(
                f"model version {found.version} failed to load",
                code="model_unavailable")
        return found

    def get_label(self, label):
        """Return the available version a label points at.

        A label whose version is still loading keeps serving the version
        it served before, if any; otherwise the request waits for it.
        """
        number = self.serving.labels.get(label)
        if number is None:
            raise LabelNotFound(
                f"no model version is labelled {label!r}; labels: "
                f"{', '.join(sorted(self.serving.labels)) or 'none'}")
        target = self.versions.get(number)
        if target is not None and target.state == AVAILABLE:
            self._served_labels[label] = number
            return target
        previous = self.versions.get(self._served_labels.get(label))
        if previous is not None and previous.state == AVAILABLE:
            return previous
        if target is None:
            raise Unavailable(
                f"label {label!r} names version {number}, which is not in "
                "the repository", code="model_unavailable")
        return self._ready(target)

    def resolve(self, version=None, label=None, variant_key=None):
        """Return ``(version, label)`` serving one request.

        A version number or a label picks its version; otherwise the
        traffic weights pick a label (sticky per ``variant_key``), or,
        without weights, the default version serves.
        """
        if version is not None:
            return self.get(version), None
        traffic = self.serving.traffic
        if label is None and traffic:
            label = pick_label(traffic, variant_key)
        if label is not None:
            return self.get_label(label), label
        return self.get(), None

    def check_ready(self):
        """Raise unless the default version is available."""
        self.get()

    def all_available(self):
        """Tell whether every version has loaded and can serve."""
        return all(version.state == AVAILABLE
                   for version in self.versions.values()
                   if version.state != UNLOADING)

    def put(self, version):
        """Add or replace one version, as one swap of the whole set."""
        version.activity = self.activity
        with self._changing:
            self.versions = {**self.versions, version.version: version}

    def discard(self, number):
        """Remove a version from the set, whatever its state."""
        with self._changing:
            versions = dict(self.versions)
            versions.pop(number, None)
            self.versions = versions

    def set_serving(self, config, error=""):
        """Take new labels and traffic weights (or the error reading them)."""
        self.serving, self.serving_error = config, error

    def load_in_background(self, work):
        """Run ``work(closing_event)`` in the loader thread."""
        self._loader = threading.Thread(
            target=work, args=(self._closing,), name="model-loader",
            daemon=True)
        self._loader.start()

    @property
    def closing(self):
        """Return the event set when the registry closes."""
        return self._closing

    def wait_until_loaded(self, timeout=None):
        """Return True once every version has settled, False on timeout."""
        for version in list(self.versions.values()):
            if not version.settled.wait(timeout):
                return False
        return True

    def close(self):
        """Stop loading and every version's batch threads."""
        self._closing.set()
        if self._loader is not None:
            # Creating one interpreter takes tens of milliseconds, so the
            # loader sees the flag soon; it is a daemon in case it does
            # not.
            self._loader.join(self.wait_timeout)
        for version in self.versions.values():
            if version.state == LOADING:
                version.settle(ModelVersion(
                    version.version, None, FAILED,
                    error="the service is stopping"))
            version.close()

    def describe(self):
        """Return the model's name, default version, labels and versions."""
        described = {"name": self.name,
                     "default_version": self.default_version,
                     "labels": dict(self.serving.labels),
                     "traffic": dict(self.serving.traffic),
                     "versions": [self.versions[number].describe()
                                  for number in sorted(self.versions)]}
        if self.serving_error:
            described["serving_error"] = self.serving_error
        return described
