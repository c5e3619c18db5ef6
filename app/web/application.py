"""Assemble the WSGI application: the service's routes and its protocols.

Each protocol with an error shape of its own (the Open Inference Protocol
under /v2, TF Serving's REST API under /v1) is a Bottle application of its
own, with its own plugins and
error pages, and :class:`PrefixDispatcher` hands it every request under
its prefix. Bottle's ``mount`` does not fit: with a prefix ending in "/"
it merges the child's routes into the parent, so a path under the prefix
that matches no child route gets the parent's error page; without the
slash it forwards a path the parent has already decoded, and the child's
second decoding fails on any non-Latin-1 path with a 500.
"""

import functools
import ipaddress
import threading

import bottle

from app.inference.decode_budget import DecodeBudget
from app.inference.pipeline import ImageLimits
from app.ops.metrics import ServiceMetrics
from app.ops.rate_limit import RateLimiter, parse_rate
from app.ops.timed_store import TimedStore
from app.web import kserve, tfserving
from app.web.access import OPEN, AccessPlugin, client_address
from app.web.docs import DocsRoutes
from app.web.health import HealthRoutes
from app.web.metrics import MetricsRoutes
from app.web.operations import Cors, OperationsMiddleware
from app.web.page import PageRoutes
from app.web.plugins import install_json_handling
from app.web.predict import PredictRoutes
from app.web.words import WordRoutes

ADMIN = "admin"


def make_app(settings, store, registry, *, metrics=None, keys=None,
             prediction_log=None, draining=None):
    """Return the WSGI app serving the store and the model registry.

    ``metrics`` records what the service does (a fresh set if None);
    ``keys`` (a KeyFile, None: every route open) decides who may call;
    ``draining``, once set, makes readiness answer 503.
    """
    metrics = metrics or ServiceMetrics()
    draining = draining or threading.Event()
    trusted = tuple(ipaddress.ip_network(network.strip()) for network in
                    (settings.trusted_proxies or "").split(",")
                    if network.strip())
    access = AccessPlugin(keys, _limiter(settings), trusted,
                          on_limited=metrics.rate_limited.inc)
    store = TimedStore(store, metrics.observe_store)
    # One budget for the memory of images being decoded, whichever
    # protocol they came by.
    limits = ImageLimits.from_settings(settings, DecodeBudget(
        settings.decode_memory_budget, settings.decode_wait_timeout))
    app = bottle.Bottle()
    install_json_handling(app, settings.max_body_bytes, access=access)
    WordRoutes(store, settings).install(app)
    PredictRoutes(registry, settings, prediction_log, metrics,
                  limits).install(app)
    HealthRoutes({"store": store.ping, "model": registry.check_ready},
                 draining).install(app)
    DocsRoutes(scope=OPEN if settings.docs_public else ADMIN).install(app)
    PageRoutes().install(app)
    MetricsRoutes(metrics, OPEN if settings.metrics_public else ADMIN,
                  functools.partial(_service_info, registry)).install(app)
    dispatcher = PrefixDispatcher(
        app, {"/v2": kserve.make_app(registry, settings, access, draining,
                                     limits),
              "/v1": tfserving.make_app(registry, settings, access,
                                        limits)})
    cors = Cors(origin.strip() for origin in
                (settings.cors_origins or "").split(",") if origin.strip())
    return OperationsMiddleware(
        dispatcher, metrics, cors,
        functools.partial(client_address, trusted_proxies=trusted))


def _limiter(settings):
    """Return the rate limiter settings ask for, or None."""
    if not settings.rate_limit:
        return None
    return RateLimiter(*parse_rate(settings.rate_limit))


def _service_info(registry):
    """Return what the info metric says: model and versions served."""
    return {"model": registry.name,
            "versions": ",".join(map(str, registry.numbers())),
            "default_version": registry.default_version}


class PrefixDispatcher:
    """Send each request to the app mounted at its path's prefix.

    A request for ``/v2`` or ``/v2/...`` goes to the app mounted at
    ``/v2`` with the prefix moved from ``PATH_INFO`` to ``SCRIPT_NAME``,
    as WSGI expects of a mounted app; every other request goes to the
    default app.
    """

    def __init__(self, default, mounts):
        """Take the default app and ``{prefix: app}``, prefixes without /."""
        self.default = default
        self.mounts = dict(mounts)

    def __call__(self, environ, start_response):
        """Serve one WSGI request."""
        path = environ.get("PATH_INFO", "")
        for prefix, app in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME",
                                                     "") + prefix
                environ["PATH_INFO"] = path[len(prefix):]
                return app(environ, start_response)
        return self.default(environ, start_response)
