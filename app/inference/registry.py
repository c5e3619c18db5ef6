"""Find, check, load and warm up the versions of the served model.

The repository has TF Serving's layout: one folder per integer version,
each holding ``model.json`` (the contract of the version), the model file
and its labels::

    model/1/model.json  model/1/model.tflite  model/1/labels.txt
    model/2/...

With ``background=True`` only the default version is loaded before
``load_registry`` returns: enough to answer the first request. A loader
thread then loads every other version; a request for a version still
``LOADING`` waits for it (within the inference wait timeout), so clients
see a slower first answer, never an error. Each version starts with one
warm interpreter and creates more as requests overlap (``runtime``).
"""

import dataclasses
import hashlib
import json
import logging
import os
import threading

from app.errors import NotFound, Unavailable
from app.inference.batching import DynamicBatcher
from app.inference.runtime import InterpreterPool

log = logging.getLogger(__name__)

LOADING = "LOADING"
AVAILABLE = "AVAILABLE"
FAILED = "FAILED"
_REQUIRED_KEYS = ("name", "version", "file", "sha256", "labels", "input",
                  "output")


class ModelRepositoryError(Exception):
    """The repository cannot serve: nothing loads, or the default is bad."""


class ModelVersionNotFound(NotFound):
    """No version with that number exists."""

    code = "model_version_not_found"


@dataclasses.dataclass
class ModelVersion:
    """One version: its metadata, labels, state and interpreters."""

    version: int
    metadata: dict
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
        self.metadata, self.error = loaded.metadata, loaded.error
        self.state = loaded.state
        self.settled.set()

    @property
    def name(self):
        """Return the model's name as model.json gives it."""
        return self.metadata.get("name", "")

    def run(self, batch):
        """Return the model's output for a batch, batched with others if on."""
        return (self.batcher or self.pool).run(batch)

    def close(self):
        """Stop the version's batch threads, if it has any."""
        if self.batcher is not None:
            self.batcher.close()

    def describe(self):
        """Return the version's state and metadata as JSON-ready data."""
        described = {"version": self.version, "state": self.state,
                     "metadata": self.metadata}
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


@dataclasses.dataclass(frozen=True)
class Batching:
    """TF Serving's dynamic batching knobs; max_batch_size 1 turns it off."""

    max_batch_size: int = 1
    batch_timeout: float = 0.0
    num_batch_threads: int = 1


def load_registry(repository, default_version=0, pool_size=None,
                  num_threads=1, wait_timeout=30.0, batching=Batching(),
                  background=False, idle_threads=0):
    """Load the versions under repository; raise if the default can't serve.

    ``default_version`` 0 means the highest version that loads;
    ``pool_size`` None means one interpreter per CPU, and so does
    ``idle_threads`` None for the threads of each pool's idle interpreter
    (``runtime``; 0 means none). With ``background`` the call returns
    once the default version is loaded and the others load in a thread
    (see the module's docstring).
    """
    pool_size = pool_size or os.cpu_count() or 1
    if idle_threads is None:
        idle_threads = os.cpu_count() or 1
    folders = find_version_folders(repository)

    def load(number):
        return load_version(folders[number], number, pool_size, num_threads,
                            wait_timeout, batching, idle_threads)

    versions, default_version = _load_default(
        repository, folders, default_version, load)
    pending = [number for number in folders if number not in versions]
    versions.update((number, ModelVersion(number, {}, LOADING))
                    for number in pending)
    registry = ModelRegistry(versions, default_version, wait_timeout)

    def load_the_rest(closing):
        for number in pending:
            versions[number].settle(
                load(number) if not closing.is_set() else ModelVersion(
                    number, {}, FAILED, error="the service is stopping"))

    if background:
        registry.load_in_background(load_the_rest)
    else:
        load_the_rest(threading.Event())
    return registry


def find_version_folders(repository):
    """Return ``{version number: folder}``; raise if there is none."""
    folders = {int(folder.name): folder for folder in (
        sorted(repository.iterdir()) if repository.is_dir() else ())
        if folder.is_dir() and folder.name.isdigit()}
    if not folders:
        raise ModelRepositoryError(f"no model version in {repository}")
    return folders


def _load_default(repository, folders, default_version, load):
    """Load the default version, or the highest that loads for 0.

    Return ``({number: ModelVersion}, default number)``; the versions
    tried and failed on the way are in the dict, as FAILED.
    """
    if default_version and default_version not in folders:
        raise ModelRepositoryError(
            f"default model version {default_version} does not exist in "
            f"{repository}; versions: {sorted(folders)}")
    versions = {}
    for number in ([default_version] if default_version
                   else sorted(folders, reverse=True)):
        versions[number] = load(number)
        if versions[number].state == AVAILABLE:
            return versions, number
    raise ModelRepositoryError(
        f"default model version {default_version} failed to load from "
        f"{repository}" if default_version
        else f"no loadable model version in {repository}")


def load_version(folder, number, pool_size, num_threads, wait_timeout,
                 batching=Batching(), idle_threads=0):
    """Load and warm up one version; a failure gives a FAILED version."""
    metadata = {}
    try:
        metadata = read_metadata(folder, number)
        labels = read_labels(folder / metadata["labels"])
        verify_sha256(folder / metadata["file"], metadata["sha256"])
        pool = InterpreterPool(folder / metadata["file"], pool_size,
                               num_threads, wait_timeout, idle_threads)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        log.error("model version %s in %s failed to load: %s", number,
                  folder, error)
        return ModelVersion(number, metadata, FAILED, error=str(error))
    batcher = None
    if batching.max_batch_size > 1:
        batcher = DynamicBatcher(pool, batching.max_batch_size,
                                 batching.batch_timeout,
                                 batching.num_batch_threads, wait_timeout)
    log.info("loaded model %s version %s (up to %d interpreters%s)",
             metadata["name"], number, pool.size,
             f", batches of up to {batching.max_batch_size}"
             if batcher else "")
    return ModelVersion(number, metadata, AVAILABLE, labels, pool, batcher)


def read_metadata(folder, number):
    """Read and check a version's model.json."""
    with open(folder / "model.json", encoding="utf-8") as handle:
        metadata = json.load(handle)
    missing = [key for key in _REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ValueError(f"model.json lacks {', '.join(missing)}")
    if metadata["version"] != number:
        raise ValueError(f"model.json says version {metadata['version']} "
                         f"but its folder is {number}")
    return metadata


def read_labels(path):
    """Return the class labels, one per line, line i naming class i."""
    with open(path, encoding="utf-8") as handle:
        labels = [line.rstrip("\n") for line in handle]
    if not labels or not all(labels):
        raise ValueError(f"{path} must hold one non-empty label per line")
    return labels


def verify_sha256(path, expected):
    """Raise unless the file's SHA-256 is the one model.json records."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ValueError(f"{path.name} has SHA-256 {digest.hexdigest()}, "
                         f"model.json expects {expected}")
