"""Score inputs on a pool of threads, handing results back in input order.

Decoding and ``invoke`` release the GIL, so threads, each lent its own
interpreter, run in parallel. At most ``window`` inputs are in flight:
a run of 100,000 inputs holds a few dozen results in memory, not all.
A result is handed back once every input before it has been, so the
output is in input order and a kill loses only the inputs in flight.
"""

import collections
import itertools
from concurrent.futures import ThreadPoolExecutor

# Inputs in flight per worker: enough that a slow one (a URL timing
# out) does not leave the others idle while it blocks the head.
WINDOW_PER_WORKER = 8


def run_in_order(inputs, score, workers, on_result,
                 window_per_worker=WINDOW_PER_WORKER):
    """Call ``on_result(score(item))`` for every input, in input order."""
    inputs = iter(inputs)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="batch")
    pending = collections.deque(
        pool.submit(score, item)
        for item in itertools.islice(inputs, workers * window_per_worker))
    try:
        while pending:
            result = pending.popleft().result()
            following = next(inputs, None)
            if following is not None:
                pending.append(pool.submit(score, following))
            on_result(result)
    finally:
        # On Ctrl-C the inputs not started are dropped; those running end
        # within one image each.
        pool.shutdown(wait=True, cancel_futures=True)
