"""The Prometheus scrape route: every metric in the text format."""

import bottle

from app.ops.metrics import CONTENT_TYPE
from app.web.access import OPEN, scope


class MetricsRoutes:
    """Serve GET /metrics from one ServiceMetrics."""

    def __init__(self, metrics, needed=OPEN, describe=None):
        """Serve ``metrics``; ``needed`` is the scope a scraper's key needs.

        ``describe()`` returns the labels of the info metric, read at
        each scrape since versions come and go.
        """
        self.metrics = metrics
        self.needed = needed
        self.describe = describe

    def install(self, app):
        """Add the scrape route to a Bottle app."""
        app.route("/metrics", "GET", self.scrape, **scope(self.needed))

    def scrape(self):
        """Return the metrics in the Prometheus text format."""
        if self.describe is not None:
            self.metrics.describe_service(**self.describe())
        bottle.response.content_type = CONTENT_TYPE
        return self.metrics.exposition()
