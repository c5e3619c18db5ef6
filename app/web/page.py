"""The root page: a small form to try the model and the word counts.

Its HTML, CSS and JavaScript are plain files in ``static/`` and load
nothing from elsewhere, so the page works offline and under the same
strict Content-Security-Policy as /docs: no inline script or style.
"""

from pathlib import Path

import bottle

from app.web.access import OPEN, scope
from app.web.docs import PAGE_HEADERS

STATIC = Path(__file__).resolve().parent / "static"
PAGE = "index.html"
ASSET_PREFIX = "/page/"
_TYPES = {".css": "text/css; charset=utf-8",
          ".js": "text/javascript; charset=utf-8",
          ".svg": "image/svg+xml"}


class PageRoutes:
    """Serve the page at / and its files under /page/."""

    def __init__(self, folder=STATIC):
        """Read the page's files once; they do not change while serving."""
        self._page = (folder / PAGE).read_bytes()
        self._assets = {path.name: (path.read_bytes(), _TYPES[path.suffix])
                        for path in folder.iterdir()
                        if path.suffix in _TYPES}

    def install(self, app):
        """Add the page's routes to a Bottle app; anyone may load them."""
        app.route("/", "GET", self.page, **scope(OPEN))
        app.route(ASSET_PREFIX + "<asset:re:[^/]*>", "GET", self.asset,
                  **scope(OPEN))

    def page(self):
        """Return the page."""
        return _answer(self._page, "text/html; charset=utf-8")

    def asset(self, asset):
        """Return one of the page's files, or 404."""
        found = self._assets.get(asset)
        if found is None:
            raise bottle.HTTPError(404)
        return _answer(*found)


def _answer(body, content_type):
    """Set the headers every file of the page goes out with; return body."""
    response = bottle.response
    response.content_type = content_type
    for name, value in PAGE_HEADERS.items():
        response.set_header(name, value)
    # The files ship with the code: a new release is a new process, and
    # revalidating keeps a browser from mixing two releases' files.
    response.set_header("Cache-Control", "no-cache")
    return body
