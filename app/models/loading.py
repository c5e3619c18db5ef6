"""Load and warm up one version of the model from its folder.

A version starts with one warm interpreter and creates more as requests
overlap (``runtime``); a version whose folder, contract, labels or model
file is not usable loads as FAILED, with the reason, rather than raising.
"""

import dataclasses
import functools
import logging
import os

from app.inference.batching import DynamicBatcher
from app.inference.runtime import InterpreterPool
from app.models.contract import read_contract
from app.models.registry import AVAILABLE, FAILED, ModelVersion
from app.models.repository import read_labels, verify_sha256

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
    #: ``observer(model, version, wait, run, batch size)`` hears of each
    #: batch a version runs (metrics); None hears nothing.
    observer: object = None


def load_version(folder, number, options=LoadOptions()):
    """Load and warm up one version; a failure gives a FAILED version."""
    contract = None
    try:
        contract = read_contract(folder, number)
        labels = read_labels(folder / contract.labels_file)
        classes = contract.output.get("shape", [None])[-1]
        if classes is not None and classes != len(labels):
            raise ValueError(f"{contract.labels_file} has {len(labels)} "
                             f"labels for {classes} output classes")
        verify_sha256(folder / contract.file, contract.sha256)
        pool = InterpreterPool(
            folder / contract.file, options.pool_size or os.cpu_count() or 1,
            options.num_threads, options.wait_timeout,
            options.lone_request_threads)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        log.error("model version %s in %s failed to load: %s", number,
                  folder, error)
        return ModelVersion(number, contract, FAILED, error=str(error))
    if options.observer is not None:
        pool.on_run = functools.partial(options.observer, contract.name,
                                        number)
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
