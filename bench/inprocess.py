"""Measure the in-process limit: the server's own pipeline, no HTTP.

This calls the very code a prediction request runs
(``app.inference.pipeline.predict``: decode, pre-process, invoke,
post-process) on a registry loaded as the server loads it, one
interpreter per core. What a server adds on top of this is HTTP parsing,
routing and threading; what it cannot beat is this.
"""

import dataclasses
import itertools
import os
import threading
import time

from app.inference.decoding import configure_pillow
from app.inference.pipeline import ImageLimits, predict
from app.inference.registry import load_registry
from app.settings import load_settings

from bench.load import percentile


@dataclasses.dataclass
class PipelineResult:
    """Images per second and latencies of one in-process measurement."""

    threads: int
    images: int
    seconds: float
    latencies: list

    @property
    def rate(self):
        """Return images per second."""
        return self.images / self.seconds

    def percentile(self, fraction):
        """Return a latency percentile in seconds."""
        return percentile(self.latencies, fraction)


def measure_pipeline(photos, versions, single_images, parallel_images,
                     threads=None):
    """Measure each version at 1 thread and at ``threads`` threads.

    ``photos`` are encoded images, used in turn; ``threads`` defaults to
    the number of cores, the pool size the server uses. Return
    ``{version: (1-thread result, N-thread result, top-1 indexes)}``, the
    last being each photo's top-1 class, to check the servers against.
    """
    threads = threads or os.cpu_count() or 1
    # Empty environ: the committed setup.cfg defaults, as the server gets.
    settings = load_settings(environ={})
    configure_pillow(settings.max_image_pixels)
    registry = load_registry(settings.model_repository, pool_size=threads,
                             num_threads=settings.interpreter_threads)
    limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels)
    results = {}
    for version in versions:
        model = registry.get(version)
        model.pool.fill()

        def classify(data, model=model):
            return predict(model, [data], settings.default_top_k, limits)

        tops = [classify(photo)[0][0]["index"] for photo in photos]
        results[version] = (
            _run(classify, photos, single_images, 1),
            _run(classify, photos, parallel_images, threads), tops)
    return results


def _run(classify, photos, images, threads):
    """Classify ``images`` photos (in turn) on ``threads`` threads."""
    tickets = itertools.count()
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)
    latencies = [[] for _ in range(threads)]

    def work(timings):
        start.wait()
        while True:
            with lock:
                ticket = next(tickets)
            if ticket >= images:
                return
            began = time.perf_counter()
            classify(photos[ticket % len(photos)])
            timings.append(time.perf_counter() - began)

    workers = [threading.Thread(target=work, args=(timings,))
               for timings in latencies]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - began
    return PipelineResult(threads, images, seconds,
                          [value for part in latencies for value in part])
