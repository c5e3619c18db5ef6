"""Measure the in-process limit: the server's own pipeline, no HTTP.

This calls the very code a prediction request runs
(``app.inference.pipeline.predict``: decode, pre-process, invoke,
post-process) on a registry loaded as the server loads it, one
interpreter per core, created before timing starts. What a server adds
on top of this is HTTP parsing, routing and threading; what it cannot
beat is this.
"""

import dataclasses
import itertools
import os
import threading
import time

from app.assembly import build_registry
from app.inference.decoding import configure_pillow
from app.inference.pipeline import ImageLimits, predict
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


def combine_pipeline_results(results):
    """Return one result for several runs at the same thread count."""
    return PipelineResult(
        threads=results[0].threads,
        images=sum(result.images for result in results),
        seconds=sum(result.seconds for result in results),
        latencies=[value for result in results for value in result.latencies])


class InProcessPipeline:
    """The prediction pipeline, loaded with the server's own settings."""

    def __init__(self, photos, versions, threads=None):
        """Load the versions with one interpreter per thread, all created.

        ``photos`` are encoded images, used in turn; ``threads`` defaults
        to the number of cores, the pool size the server uses.
        """
        self.photos = photos
        self.threads = threads or os.cpu_count() or 1
        # Empty environ: the committed setup.cfg defaults, as the server
        # gets them.
        settings = load_settings(environ={},
                                 overrides={"interpreters": self.threads})
        configure_pillow(settings.max_image_pixels)
        self.registry = build_registry(settings, background=False)
        self.limits = ImageLimits.from_settings(settings)
        self.top_k = settings.default_top_k
        for version in versions:
            self.registry.get(version).pool.fill()

    def classify(self, version, data):
        """Return the ranked classes of one encoded image."""
        (classes,) = predict(self.registry.get(version), [data],
                             self.top_k, self.limits)
        return classes

    def top1(self, version):
        """Return each photo's top-1 class index, to check servers by."""
        return [self.classify(version, photo)[0]["index"]
                for photo in self.photos]

    def run(self, version, images, threads):
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
                self.classify(version, self.photos[ticket % len(self.photos)])
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

    def close(self):
        """Release the registry's threads."""
        self.registry.close()
