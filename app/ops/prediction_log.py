"""Record a sample of predictions as JSON lines, never slowing a request.

Each sampled prediction becomes one line: time, request id, model,
version and label, the input's SHA-256, size and pixel dimensions (never
its bytes), the top classes with their scores, and the latency. Lines go
through a bounded queue to a writer thread (the standard library's
``QueueHandler``/``QueueListener``) and a size-rotated file; when the
queue is full a line is dropped and counted, so a slow disk never holds
a request.
"""

import hashlib
import io
import json
import logging
import logging.handlers
import queue
import random
import threading
import time

from PIL import Image


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Put records on the queue without waiting; count what does not fit."""

    def __init__(self, records, on_drop):
        """Use the bounded queue ``records``; call ``on_drop`` when full."""
        super().__init__(records)
        self._on_drop = on_drop

    def enqueue(self, record):
        """Queue the record, or drop it if the queue is full."""
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self._on_drop()

    def prepare(self, record):
        """Keep the record as it is: its message is already a JSON line."""
        return record


class PredictionLog:
    """A sampled, rotated JSON-lines log of predictions."""

    def __init__(self, path, sample=1.0, max_bytes=10 * 2 ** 20, backups=5,
                 queue_size=1000, on_drop=None):
        """Open (append) the file and start the writer thread.

        ``on_drop()`` hears of each line dropped (a metric).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sample = sample
        self.dropped = 0
        self._on_drop = on_drop
        self._count_lock = threading.Lock()
        writer = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        writer.setFormatter(logging.Formatter("%(message)s"))
        records = queue.Queue(queue_size)
        self._listener = logging.handlers.QueueListener(records, writer)
        self._handler = _DroppingQueueHandler(records, self._count_drop)
        self._writer = writer
        self._listener.start()

    def _count_drop(self):
        """Count one line that the full queue could not take."""
        with self._count_lock:
            self.dropped += 1
        if self._on_drop is not None:
            self._on_drop()

    def sampled(self):
        """Tell whether this prediction is one to record."""
        return self.sample >= 1.0 or random.random() < self.sample

    def record(self, images, predictions, model, label, request_id,
               seconds):
        """Queue one line per image of a prediction (call when sampled)."""
        now = time.time()
        for data, classes in zip(images, predictions):
            line = {"time": now, "request_id": request_id,
                    "model": model.name, "version": model.version,
                    "label": label, "input": describe_input(data),
                    "classes": classes, "latency_seconds": seconds}
            self._handler.handle(logging.makeLogRecord(
                {"msg": json.dumps(line), "levelno": logging.INFO}))

    def close(self):
        """Write what is queued, then close the file."""
        self._listener.stop()
        self._writer.close()


def describe_input(data):
    """Return an encoded image's SHA-256, byte size and pixel size."""
    described = {"sha256": hashlib.sha256(data).hexdigest(),
                 "bytes": len(data)}
    try:
        # Opening reads the header only; the pixels were decoded already.
        with Image.open(io.BytesIO(data)) as image:
            described["width"], described["height"] = image.size
    except (OSError, ValueError):  # decoded once already: not expected
        pass
    return described
