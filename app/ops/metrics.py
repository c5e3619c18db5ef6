"""The service's Prometheus metrics, made with ``prometheus_client``.

Every duration is a histogram in seconds whose buckets fit what is
measured (a JPEG decodes in a few milliseconds, an invoke takes 10-20 ms
on one core, a queue wait can reach the 30 s wait timeout); labels stay
few and bounded (route templates, not paths), so that ``sum by (le)``
across replicas gives the service's own percentiles. Each app gets its
own registry, so that several apps in one process (tests) never mix.
"""

from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info,
    generate_latest)

PREFIX = "model_server"
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0)
INFERENCE_BUCKETS = (0.002, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02,
                     0.025, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)
QUEUE_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                 1.0, 2.5, 5.0, 10.0, 30.0)
DECODE_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
                  0.1, 0.25, 0.5, 1.0, 2.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                 0.025, 0.05, 0.1, 0.25, 1.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """Every metric of one service instance, in a registry of its own."""

    def __init__(self):
        """Create the metrics, all at zero."""
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            f"{PREFIX}_http_requests_total", "HTTP requests answered.",
            ["route", "method", "status"], registry=registry)
        self.request_seconds = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time from the request's arrival at the app to its answer.",
            ["route", "method"], buckets=HTTP_BUCKETS, registry=registry)
        self.in_flight = Gauge(
            f"{PREFIX}_http_requests_in_flight",
            "Requests being handled right now.", registry=registry)
        self.inference_seconds = Histogram(
            f"{PREFIX}_inference_duration_seconds",
            "Time one batch spends in the model.", ["model", "version"],
            buckets=INFERENCE_BUCKETS, registry=registry)
        self.queue_seconds = Histogram(
            f"{PREFIX}_inference_queue_duration_seconds",
            "Time a batch waits for a free interpreter.",
            ["model", "version"], buckets=QUEUE_BUCKETS, registry=registry)
        self.batch_size = Histogram(
            f"{PREFIX}_inference_batch_size", "Images in one invoke.",
            ["model", "version"], buckets=BATCH_BUCKETS, registry=registry)
        self.decode_seconds = Histogram(
            f"{PREFIX}_image_decode_duration_seconds",
            "Time to decode and pre-process one image.",
            buckets=DECODE_BUCKETS, registry=registry)
        self.predictions = Counter(
            f"{PREFIX}_predictions_total",
            "Images classified, or refused, by model, version and outcome.",
            ["model", "version", "label", "outcome"], registry=registry)
        self.store_seconds = Histogram(
            f"{PREFIX}_store_operation_duration_seconds",
            "Time of one word-store operation.", ["operation", "outcome"],
            buckets=STORE_BUCKETS, registry=registry)
        self.prediction_log_dropped = Counter(
            f"{PREFIX}_prediction_log_dropped_total",
            "Prediction log lines dropped because the writer fell behind.",
            registry=registry)
        self.rate_limited = Counter(
            f"{PREFIX}_rate_limited_total",
            "Requests refused for going over the rate limit.",
            registry=registry)
        self.info = Info(f"{PREFIX}", "The service and its model versions.",
                         registry=registry)
        # The children of each label set, looked up once: labels() takes
        # a lock and checks its arguments on every call. Like the metrics'
        # own children, an entry is never removed.
        self._request_children = {}
        self._store_children = {}
        self._inference_children = {}
        self._prediction_children = {}

    def observe_request(self, route, method, status, seconds):
        """Count one answered request and its duration."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(route, method, str(status)),
                self.request_seconds.labels(route, method))
        children[0].inc()
        children[1].observe(seconds)

    def observe_inference(self, model, version, wait_seconds, run_seconds,
                          batch_size):
        """Record one invoke: its queue wait, its run time, its batch."""
        children = self._inference_children.get((model, version))
        if children is None:
            labels = (model, str(version))
            children = self._inference_children[model, version] = (
                self.queue_seconds.labels(*labels),
                self.inference_seconds.labels(*labels),
                self.batch_size.labels(*labels))
        children[0].observe(wait_seconds)
        children[1].observe(run_seconds)
        children[2].observe(batch_size)

    def observe_decode(self, seconds):
        """Record the decoding and pre-processing of one image."""
        self.decode_seconds.observe(seconds)

    def count_predictions(self, model, version, label, outcome, images=1):
        """Count images classified ("ok") or refused (an error code)."""
        key = (model, version, label, outcome)
        child = self._prediction_children.get(key)
        if child is None:
            child = self._prediction_children[key] = self.predictions.labels(
                model, str(version), label or "", outcome)
        child.inc(images)

    def observe_store(self, operation, outcome, seconds):
        """Record one word-store operation."""
        child = self._store_children.get((operation, outcome))
        if child is None:
            child = self._store_children[operation, outcome] = (
                self.store_seconds.labels(operation, outcome))
        child.observe(seconds)

    def describe_service(self, **fields):
        """Set the info metric's labels (service and model versions)."""
        self.info.info({name: str(value) for name, value in fields.items()})

    def exposition(self):
        """Return every metric in the Prometheus text format."""
        return generate_latest(self.registry)
