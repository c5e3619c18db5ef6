"""The API's own description: the OpenAPI document and Swagger UI."""

import functools
import json
from pathlib import Path

import bottle

from app.web.access import OPEN, scope

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
# Swagger UI's files come from a Python package, so the page works on a
# host with no internet access and loads nothing from a CDN.
_BUNDLED = frozenset({"swagger-ui.css", "swagger-ui-bundle.js",
                      "swagger-ui-standalone-preset.js", "favicon-32x32.png",
                      "favicon-16x16.png"})
# The page's own start-up code is a file rather than an inline script, so
# the policy below need not allow inline scripts.
INIT_SCRIPT = "swagger-init.js"
ASSETS = _BUNDLED | {INIT_SCRIPT}
# Only this server's files run or load; Swagger UI's stylesheet inlines
# its icons as data: URIs. No other site has a reason to frame the page,
# and a frame would let it trick a visitor into a click on "Execute".
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Frame-Options": "DENY"}
# Swagger UI's default validator badge would send the document's URL to a
# third party's server and load its answer as an image: it is turned off.
_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  validatorUrl: null
});
"""
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/{init}"></script>
</body>
</html>
"""


def load_spec(path=SPEC_PATH):
    """Return the OpenAPI document as a dict, read from its YAML source."""
    # Imported here: PyYAML and the parse cost about 20 ms, which every
    # start would pay although few clients ever ask for the document.
    import yaml
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


class DocsRoutes:
    """Serve the OpenAPI document and Swagger UI."""

    def __init__(self, load=load_spec, scope=OPEN):
        """Keep the loader; the document is read at its first request.

        ``scope`` is what a caller's API key needs to read the documents
        (open to everyone by default).
        """
        self._load = load
        self.scope = scope

    @functools.cached_property
    def _rendered(self):
        """Return the document as JSON and the page, rendered once.

        Two first requests at once may both render; they get equal text.
        """
        spec = self._load()
        return json.dumps(spec), _PAGE.format(title=spec["info"]["title"],
                                              init=INIT_SCRIPT)

    def install(self, app):
        """Add the documentation routes to a Bottle app."""
        needed = scope(self.scope)
        app.route("/openapi.json", "GET", self.openapi, **needed)
        app.route("/docs", "GET", self.docs, **needed)
        app.route("/docs/<asset:re:[^/]*>", "GET", self.asset, **needed)

    def openapi(self):
        """Return the OpenAPI document."""
        bottle.response.content_type = "application/json"
        return self._rendered[0]

    def docs(self):
        """Return the Swagger UI page."""
        bottle.response.content_type = "text/html; charset=utf-8"
        _add_page_headers(bottle.response)
        return self._rendered[1]

    def asset(self, asset):
        """Return one of the page's files; /docs/ is the page."""
        if not asset:
            bottle.redirect("/docs", 301)
        if asset == INIT_SCRIPT:
            bottle.response.content_type = "text/javascript; charset=utf-8"
            _add_page_headers(bottle.response)
            return _INIT
        if asset not in _BUNDLED:
            raise bottle.HTTPError(404)
        # Imported by the first request for one of its files rather than
        # at every start of the service, which it would make 4 ms longer.
        import swagger_ui_bundle
        # static_file answers with a response of its own, which replaces
        # bottle.response: the headers go on that one.
        return _add_page_headers(bottle.static_file(
            asset, root=swagger_ui_bundle.swagger_ui_path))


def _add_page_headers(response):
    """Give a response of the page the page's policy; return it."""
    for name, value in PAGE_HEADERS.items():
        response.set_header(name, value)
    return response
