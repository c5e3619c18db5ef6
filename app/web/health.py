"""Liveness and readiness routes for load balancers and orchestrators."""

import logging

from app.web.access import OPEN, scope
from app.web.plugins import json_response

log = logging.getLogger(__name__)


class HealthRoutes:
    """Report whether the process runs and whether it can serve."""

    def __init__(self, checks, draining=None):
        """Take ``{name: callable}``; a check raises when not ready.

        Once ``draining`` (an Event) is set the service is stopping:
        readiness says so with a 503, so that balancers send no more.
        """
        self.checks = checks
        self.draining = draining

    def install(self, app):
        """Add the health routes to a Bottle app."""
        app.route("/health/live", "GET", self.live, **scope(OPEN))
        app.route("/health/ready", "GET", self.ready, **scope(OPEN))

    def live(self):
        """Answer as long as the process can handle a request."""
        return {"status": "live"}

    def ready(self):
        """Run every readiness check; 503 if any of them fails."""
        if self.draining is not None and self.draining.is_set():
            return json_response(503, {"status": "draining", "checks": {}})
        results = {}
        for name, check in self.checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as error:  # any failure means "not ready"
                log.warning("readiness check %s failed: %s", name, error)
                results[name] = f"failed: {error}"
        ready = all(result == "ok" for result in results.values())
        return json_response(200 if ready else 503, {
            "status": "ready" if ready else "unavailable",
            "checks": results})
