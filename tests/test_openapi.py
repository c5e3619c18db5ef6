"""The OpenAPI document: valid, in step with the routes, and fuzzed.

schemathesis generates requests from the document and checks every answer
against it; the word grammar (Unicode letters after NFKC) and "these bytes
decode as an image" cannot be written in JSON Schema, so its
positive_data_acceptance check, which expects every schema-valid request
to succeed, is the one check left out.
"""

import re
import subprocess
import sys
from pathlib import Path

from openapi_spec_validator import validate

from app.web.docs import ASSETS, load_spec
from tests.conftest import Client, RunningServer, make_settings

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
EXAMPLES_PER_OPERATION = 25
SEED = 20261122


def spec_operations(spec):
    """Return ``{(METHOD, path)}`` of every operation in the document."""
    return {(method.upper(), path)
            for path, item in spec["paths"].items()
            for method in item if method in METHODS}


def route_operations(wsgi):
    """Return ``{(METHOD, path)}`` of every route, in OpenAPI's notation.

    A mounted sub-application's routes count under its prefix; a colon
    that a rule escapes (TF Serving's ``:predict``) is a literal colon.
    """
    dispatcher = wsgi.app  # inside the operations middleware
    apps = [("", dispatcher.default), *dispatcher.mounts.items()]
    return {(route.method,
             (prefix + re.sub(r"<(\w+)(?::[^>]*)?>", r"{\1}",
                              route.rule).replace("\\:", ":")).rstrip("/")
             or "/")
            for prefix, app in apps for route in app.routes}


def test_document_is_valid_openapi_3():
    """The document passes the OpenAPI 3 validator."""
    validate(load_spec())


def test_every_route_is_documented_and_nothing_else(server):
    """Routes and documented operations are the same set."""
    routes = route_operations(server.parts.wsgi)
    documented = spec_operations(load_spec())
    assert routes - documented == set(), "routes missing from the document"
    assert documented - routes == set(), "documented routes that don't exist"


def test_openapi_json_serves_the_document(client):
    """GET /openapi.json is the YAML source, as JSON."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == load_spec()


def test_docs_page_loads_only_local_assets(client):
    """The Swagger UI page and its files come from this server."""
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references and all(ref.startswith("/docs/")
                              for ref in references)
    for reference in references:
        assert Path(reference).name in ASSETS
        asset = client.get(reference)
        assert asset.status_code == 200 and len(asset.content) > 100
    assert client.get("/docs/index.html").status_code == 404
    assert client.get("/docs/..%2Fsetup.cfg").status_code == 404


def test_schemathesis_finds_no_server_error_and_no_spec_violation(tmp_path):
    """Generated requests get only documented, schema-conforming answers."""
    settings = make_settings(tmp_path, fetch_enabled=False)
    # Its own registry, which repository loads change. Unloading is left
    # out: it makes every model route answer 404 and readiness 503 by
    # design, and tests/test_model_lifecycle.py tests it.
    with RunningServer(settings, assembled=True) as running:
        with Client(running.url) as client:
            assert client.get("/health/ready").status_code == 200
        result = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run",
             running.url + "/openapi.json", "--checks", "all",
             "--exclude-checks", "positive_data_acceptance",
             "--exclude-operation-id", "v2RepositoryUnload",
             "--max-examples", str(EXAMPLES_PER_OPERATION),
             "--seed", str(SEED), "--generation-database", "none",
             "--request-timeout", "30", "--no-color"],
            capture_output=True, text=True, timeout=600)
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr
    assert summary and summary.group(1) == summary.group(2)
    assert int(summary.group(1)) > 300


def test_root_and_docs_slash_lead_to_the_documentation(client):
    """GET / is a page that links to /docs; /docs/ redirects to /docs."""
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'href="/docs"' in page.text
    assert client.get("/docs").status_code == 200
    slash = client.get("/docs/", allow_redirects=False)
    assert slash.status_code == 301
    assert slash.headers["Location"].endswith("/docs")


def test_document_names_no_fixed_server(client):
    """Swagger UI's "Try it out" talks to whichever host served the page."""
    servers = client.get("/openapi.json").json()["servers"]
    assert [server["url"] for server in servers] == ["/"]
