"""The API's own description: an index, the OpenAPI document, Swagger UI."""

import functools
import json
from pathlib import Path

import bottle
import swagger_ui_bundle

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
# Swagger UI's files come from a Python package, so the page works on a
# host with no internet access and loads nothing from a CDN.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js",
                    "swagger-ui-standalone-preset.js", "favicon-32x32.png",
                    "favicon-16x16.png"})
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
  <script>
    window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"}});
  </script>
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

    def __init__(self, load=load_spec):
        """Keep the loader; the document is read at its first request."""
        self._load = load

    @functools.cached_property
    def _rendered(self):
        """Return the document as JSON and the page, rendered once.

        Two first requests at once may both render; they get equal text.
        """
        spec = self._load()
        return json.dumps(spec), _PAGE.format(title=spec["info"]["title"])

    def install(self, app):
        """Add the documentation routes to a Bottle app."""
        app.route("/", "GET", self.index)
        app.route("/openapi.json", "GET", self.openapi)
        app.route("/docs", "GET", self.docs)
        app.route("/docs/<asset:re:[^/]*>", "GET", self.asset)

    def index(self):
        """Point a visitor of the root at the documentation and health."""
        return {"docs": "/docs", "openapi": "/openapi.json",
                "health": "/health/ready", "models": "/models"}

    def openapi(self):
        """Return the OpenAPI document."""
        bottle.response.content_type = "application/json"
        return self._rendered[0]

    def docs(self):
        """Return the Swagger UI page."""
        bottle.response.content_type = "text/html; charset=utf-8"
        return self._rendered[1]

    def asset(self, asset):
        """Return one of Swagger UI's static files; /docs/ is the page."""
        if not asset:
            bottle.redirect("/docs", 301)
        if asset not in ASSETS:
            raise bottle.HTTPError(404)
        return bottle.static_file(asset,
                                  root=swagger_ui_bundle.swagger_ui_path)
