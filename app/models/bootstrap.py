"""Load a model repository at start, then hand it to the watcher.

Only the default version is loaded before :func:`load_registry` returns
when ``background`` is set: enough to answer the first request. The
watcher then loads every other version in its thread, each in a lull of
the predictions, and, with a poll interval, keeps following the folder
(``watcher``).
"""

import threading

from app.models.loading import LoadOptions, load_version
from app.models.registry import (
    AVAILABLE, LOADING, ModelRegistry, ModelVersion)
from app.models.repository import ModelRepositoryError, find_version_folders
from app.models.watcher import RepositoryWatcher

# Versions loaded in the background wait until no prediction has run for
# this long, and at most this long (app.models.activity): long enough to
# let a burst of requests pass, short enough that a busy service still
# loads every version within seconds.
LULL_SECONDS = 0.25
LONGEST_LULL_WAIT_SECONDS = 10.0


def load_registry(repository, default_version=0, options=LoadOptions(),
                  background=False, poll_seconds=0.0):
    """Load the versions under repository; raise if the default can't serve.

    ``default_version`` 0 serves the highest available version, another
    number pins it. Without ``background`` every version is loaded before
    the call returns, and the folder is not watched.
    """
    folders = find_version_folders(repository)
    versions = _load_default(repository, folders, default_version,
                             options)
    versions.update((number, ModelVersion(number, None, LOADING))
                    for number in folders if number not in versions)
    registry = ModelRegistry(versions, default_version, options.wait_timeout)
    watcher = RepositoryWatcher(
        registry, repository, options, poll_seconds if background else 0.0,
        lull=(LULL_SECONDS, LONGEST_LULL_WAIT_SECONDS) if background
        else None)
    registry.watcher = watcher
    watcher.read_serving()
    if background:
        registry.load_in_background(watcher.start)
    else:
        watcher.start(threading.Event())
    return registry


def _load_default(repository, folders, default_version, options):
    """Load the default version, or the highest that loads for 0.

    Return ``{number: ModelVersion}``: the default, and the versions
    tried and failed on the way, as FAILED.
    """
    if default_version and default_version not in folders:
        raise ModelRepositoryError(
            f"default model version {default_version} does not exist in "
            f"{repository}; versions: {sorted(folders)}")
    versions = {}
    for number in ([default_version] if default_version
                   else sorted(folders, reverse=True)):
        versions[number] = load_version(folders[number], number, options)
        if versions[number].state == AVAILABLE:
            return versions
    raise ModelRepositoryError(
        f"default model version {default_version} failed to load from "
        f"{repository}" if default_version
        else f"no loadable model version in {repository}")
