"""Server-side dynamic batching, with TF Serving's three knobs.

Requests that arrive within ``batch_timeout`` of each other are stacked into
one ``invoke`` of up to ``max_batch_size`` images, run by one of
``num_batch_threads`` threads. Whether that is faster depends on the model
and the machine: on a CPU with one interpreter per core, a batched invoke
costs about the same per image as a single one, and the wait only adds
latency, so batching is off unless settings turn it on (``make bench``
measures both).
"""

import concurrent.futures
import dataclasses
import queue
import threading
import time

import numpy as np

from app.errors import Unavailable

# Tells a batch thread to stop; a job can never be this object.
_STOP = object()


@dataclasses.dataclass
class _Job:
    """The images of one request and where their scores go."""

    batch: np.ndarray
    result: concurrent.futures.Future


class DynamicBatcher:
    """Run batches for many request threads on a pool of interpreters."""

    def __init__(self, pool, max_batch_size, batch_timeout,
                 num_batch_threads, wait_timeout):
        """Start the batch threads; they borrow runners from ``pool``."""
        self._pool = pool
        self.max_batch_size = max_batch_size
        self.batch_timeout = batch_timeout
        self._wait_timeout = wait_timeout
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.batches_run = 0
        self._threads = [threading.Thread(target=self._serve, daemon=True,
                                          name=f"batcher-{number}")
                         for number in range(num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def run(self, batch):
        """Return the model's output for one request's batch of images."""
        if batch.shape[0] >= self.max_batch_size:
            return self._pool.run(batch)
        job = _Job(batch, concurrent.futures.Future())
        self._jobs.put(job)
        try:
            return job.result.result(timeout=self._wait_timeout)
        except concurrent.futures.TimeoutError:
            raise Unavailable(
                f"no batch ran within {self._wait_timeout} s",
                code="model_busy") from None

    def close(self):
        """Stop the batch threads once the jobs queued so far are done."""
        for _ in self._threads:
            self._jobs.put(_STOP)
        for thread in self._threads:
            thread.join()

    def _serve(self):
        """Collect jobs into batches and run them until told to stop."""
        carried = None
        while True:
            first = carried if carried is not None else self._jobs.get()
            if first is _STOP:
                return
            jobs, carried = self._collect(first)
            self._run(jobs)

    def _collect(self, first):
        """Return jobs that fit one batch, and a job for the next one."""
        jobs, size = [first], first.batch.shape[0]
        deadline = time.monotonic() + self.batch_timeout
        while size < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                job = self._jobs.get(timeout=max(remaining, 0))
            except queue.Empty:
                break
            if job is _STOP or (size + job.batch.shape[0]
                                > self.max_batch_size):
                return jobs, job
            jobs.append(job)
            size += job.batch.shape[0]
        return jobs, None

    def _run(self, jobs):
        """Run one stacked batch and hand each job its rows."""
        try:
            output = self._pool.run(np.concatenate(
                [job.batch for job in jobs]))
        except Exception as error:  # every waiting request must hear of it
            for job in jobs:
                job.result.set_exception(error)
            return
        with self._lock:
            self.batches_run += 1
        start = 0
        for job in jobs:
            end = start + job.batch.shape[0]
            job.result.set_result(output[start:end])
            start = end
