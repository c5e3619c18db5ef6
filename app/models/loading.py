"""Load and warm up the versions of a repository into a registry.

Only the default version is loaded before :func:`load_registry` returns
when ``background`` is set: enough to answer the first request. A loader
thread then loads every other version. Each version starts with one warm
interpreter and creates more as requests overlap (``runtime``).
"""

import dataclasses
import logging
import os
import threading

from app.inference.batching import DynamicBatcher
from app.inference.runtime import InterpreterPool
from app.models.contract import read_contract
from app.models.registry import (
    AVAILABLE, FAILED, LOADING, ModelRegistry, ModelVersion)
from app.models.repository import (
    ModelRepositoryError, find_version_folders, read_labels, verify_sha256)

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Batching:
    """TF Serving's dynamic batching knobs; max_batch_size 1 turns it off."""

    max_batch_size: int = 1
    batch_timeout: float = 0.0
    num_batch_threads: int = 1


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """How each version's interpreters are made and lent out.

    ``pool_size`` caps the single-thread interpreters of a version (None:
    one per CPU); ``lone_request_threads`` above ``num_threads`` gives each
    version one more interpreter with that many threads, for a request
    that arrives while no other runs (``runtime``); 0 means none.
    """

    pool_size: int | None = None
    num_threads: int = 1
    lone_request_threads: int = 0
    wait_timeout: float = 30.0
    batching: Batching = Batching()


def load_registry(repository, default_version=0, options=LoadOptions(),
                  background=False):
    """Load the versions under repository; raise if the default can't serve.

    ``default_version`` 0 means the highest version that loads. With
    ``background`` the call returns once the default version is loaded
    and the others load in a thread (see the module's docstring).
    """
    folders = find_version_folders(repository)

    def load(number):
        return load_version(folders[number], number, options)

    versions, default_version = _load_default(
        repository, folders, default_version, load)
    pending = [number for number in folders if number not in versions]
    versions.update((number, ModelVersion(number, None, LOADING))
                    for number in pending)
    registry = ModelRegistry(versions, default_version, options.wait_timeout)

    def load_the_rest(closing):
        for number in pending:
            versions[number].settle(
                load(number) if not closing.is_set() else ModelVersion(
                    number, None, FAILED, error="the service is stopping"))

    if background:
        registry.load_in_background(load_the_rest)
    else:
        load_the_rest(threading.Event())
    return registry


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


def load_version(folder, number, options=LoadOptions()):
    """Load and warm up one version; a failure gives a FAILED version."""
    contract = None
    try:
        contract = read_contract(folder, number)
        labels = read_labels(folder / contract.labels_file)
        verify_sha256(folder / contract.file, contract.sha256)
        pool = InterpreterPool(
            folder / contract.file, options.pool_size or os.cpu_count() or 1,
            options.num_threads, options.wait_timeout,
            options.lone_request_threads)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        log.error("model version %s in %s failed to load: %s", number,
                  folder, error)
        return ModelVersion(number, contract, FAILED, error=str(error))
    batching, batcher = options.batching, None
    if batching.max_batch_size > 1:
        batcher = DynamicBatcher(pool, batching.max_batch_size,
                                 batching.batch_timeout,
                                 batching.num_batch_threads,
                                 options.wait_timeout)
    log.info("loaded model %s version %s (up to %d interpreters%s)",
             contract.name, number, pool.size,
             f", batches of up to {batching.max_batch_size}"
             if batcher else "")
    return ModelVersion(number, contract, AVAILABLE, labels, pool, batcher)
