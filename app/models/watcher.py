"""Keep the registry in step with the repository folder while serving.

Every ``poll_seconds`` the watcher looks at the repository:

* a new version folder is loaded once its files have stopped changing
  between two looks (a folder being copied is left LOADING, never
  served, and looked at again on the next poll), checked against its
  SHA-256 and warmed up, and only then served;
* a version that failed to load is tried again with a growing delay, and
  at once when its files change; it never replaces a version that serves;
* a removed folder's version takes no new request; the requests it is
  running finish, then its interpreters go with the last of them;
* ``serving.json`` (labels, traffic) is read again when it changes.

Scans are serialized: the poll and explicit loads (the Triton repository
API) never run at the same time, and a load asked for while another runs
waits for that one instead of loading again.
"""

import logging
import threading
import time

from app.models.loading import LoadOptions, load_version
from app.models.registry import (
    AVAILABLE, FAILED, LOADING, UNLOADING, ModelVersion)
from app.models.repository import version_folders
from app.models.serving import FILE_NAME, read_serving_config

log = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 300.0


def folder_signature(folder):
    """Return the names, sizes and times of a folder's files, to compare."""
    try:
        return tuple(sorted(
            (str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns)
            for path in folder.rglob("*")
            if (stat := path.stat()) and path.is_file()))
    except OSError:  # a file vanished while we looked: still changing
        return None


class RepositoryWatcher:
    """Load, retry and unload versions as the repository folder changes."""

    def __init__(self, registry, repository, options=LoadOptions(),
                 poll_seconds=2.0, lull=None):
        """Watch ``repository`` for ``registry``; ``start`` begins polling.

        ``lull``, as ``(quiet seconds, longest wait)``, makes each load
        in the watcher's thread wait for a lull in the predictions first
        (:mod:`app.models.activity`); None loads at once.
        """
        self.registry = registry
        self.lull = lull
        self.repository = repository
        self.options = options
        self.poll_seconds = poll_seconds
        self.unloaded = False
        self._scanning = threading.Lock()
        #: Explicit loads carried out, so a waiting one can tell.
        self.loads = 0
        self._signatures = {}
        self._retries = {}
        self._serving_signature = None

    def start(self, closing):
        """Load what is pending, then poll until ``closing`` is set."""
        self.scan(closing=closing, wait_for_quiet=False, retry_failed=False)
        while self.poll_seconds and not closing.wait(self.poll_seconds):
            try:
                self.scan(closing=closing)
            except Exception:  # a broken poll must not end the watching
                log.exception("scanning %s failed", self.repository)

    def load(self):
        """Load every version now (an explicit request); idempotent.

        A load asked for while another runs waits for it and returns:
        the versions are then as loaded as one more scan would make them.
        """
        seen = self.loads
        # A load asked for is not background work: a scan in progress
        # stops waiting for a lull.
        with self.registry.activity.waiting_for_load(), self._scanning:
            self.unloaded = False
            if self.loads == seen:
                self._scan(wait_for_quiet=False, closing=None)
                self.loads += 1

    def unload(self):
        """Stop serving every version until the next explicit load."""
        with self._scanning:
            self.unloaded = True
            for number in list(self.registry.versions):
                self._retire(number)

    def scan(self, closing=None, wait_for_quiet=True, retry_failed=True):
        """Bring the registry in step with the folder once."""
        with self._scanning:
            if not self.unloaded:
                self._scan(wait_for_quiet, closing, retry_failed)

    def _scan(self, wait_for_quiet, closing, retry_failed=True):
        """Look at the folder once; the scan lock is held."""
        folders = version_folders(self.repository)
        for number in list(self.registry.versions):
            if number not in folders:
                self._retire(number)
        for number, folder in sorted(folders.items(), reverse=True):
            if closing is not None and closing.is_set():
                return
            self._look_at(number, folder, wait_for_quiet, retry_failed,
                          closing)
        self.read_serving()

    def _look_at(self, number, folder, wait_for_quiet, retry_failed,
                 closing=None):
        """Load a new, pending or failed version if its folder is ready."""
        current = self.registry.versions.get(number)
        if current is not None and (
                current.state in (AVAILABLE, UNLOADING)
                or (current.state == FAILED and not retry_failed)):
            return
        signature = folder_signature(folder)
        changed = signature != self._signatures.get(number)
        self._signatures[number] = signature
        if current is None:
            current = ModelVersion(number, None, LOADING)
            self.registry.put(current)
        if changed:
            self._retries.pop(number, None)
        if signature is None or (wait_for_quiet and changed):
            if current.state == LOADING:
                current.error = ("waiting for the folder's files to stop "
                                 "changing")
            return
        due, _ = self._retries.get(number, (0.0, 0.0))
        if wait_for_quiet and time.monotonic() < due:
            return
        if self.lull is not None and closing is not None:
            self.registry.activity.wait_for_lull(*self.lull, closing)
            if closing.is_set():
                return
        loaded = load_version(folder, number, self.options)
        loaded.load_attempts = current.load_attempts + 1
        if loaded.state == FAILED:
            self._schedule_retry(number)
        else:
            self._retries.pop(number, None)
        if current.state == LOADING:
            current.settle(loaded)
        else:
            self.registry.put(loaded)

    def _schedule_retry(self, number):
        """Try a failed version again later, waiting longer each time."""
        _, delay = self._retries.get(number, (0.0, 0.0))
        delay = min(max(delay * 2, self.poll_seconds or 1.0),
                    MAX_RETRY_SECONDS)
        self._retries[number] = (time.monotonic() + delay, delay)

    def _retire(self, number):
        """Take a version out of service; free it once its requests end."""
        version = self.registry.versions.get(number)
        if version is None:
            return
        version.state = UNLOADING
        version.settled.set()
        self.registry.discard(number)
        self._signatures.pop(number, None)
        self._retries.pop(number, None)
        log.info("unloading model version %s", number)

        def finish():
            version.wait_idle(self.registry.wait_timeout)
            version.close()
        threading.Thread(target=finish, name=f"unload-{number}",
                         daemon=True).start()

    def read_serving(self):
        """Read serving.json again if it changed since the last look."""
        path = self.repository / FILE_NAME
        try:
            stat = path.stat()
            signature = (stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            signature = None
        if signature == self._serving_signature:
            return
        self._serving_signature = signature
        try:
            self.registry.set_serving(read_serving_config(self.repository))
        except (OSError, ValueError) as error:
            # The labels in force keep serving until the file is fixed.
            log.error("%s is not usable: %s", path, error)
            self.registry.set_serving(self.registry.serving, str(error))
