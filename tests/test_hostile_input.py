"""Hostile requests get a 4xx JSON error and safe headers, never a 500."""

import http.client
import re
import zlib
from urllib.parse import urlsplit

import pytest

from app.web.bodies import MAX_JSON_DEPTH
from tests.conftest import TIMEOUT, Client, RunningServer, make_settings

MODEL = "efficientnet-lite0"
JSON_TYPE = {"Content-Type": "application/json"}
JSON_ROUTES = [
    ("POST", "/words"), ("PUT", "/words/deep"), ("PATCH", "/words/deep"),
    ("POST", "/texts"), ("POST", "/predict/model"),
    ("POST", "/predict/model/v1"), ("POST", f"/v2/models/{MODEL}/infer"),
    ("POST", f"/v2/models/{MODEL}/versions/1/infer"),
]
DEEPLY_NESTED = {
    "arrays": b'{"word": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    "objects": b'{"a": ' * 1000 + b"1" + b"}" * 1000,
}


def error_code(response):
    """Return the error code of a JSON error in either of the API's shapes.

    Under /v2 the error is ``{"error": message, "code": code}``; elsewhere
    it is ``{"error": {"code": code, "message": message}}``.
    """
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    if "/v2/" in response.url:
        assert isinstance(body["error"], str) and body["error"]
        return body["code"]
    assert isinstance(body["error"]["message"], str)
    return body["error"]["code"]


def assert_refused(response, status, code):
    """Check that a response is the JSON error with status and code."""
    assert response.status_code == status, response.text
    assert error_code(response) == code


def nested_lists(depth, innermost=b"1"):
    """Return innermost wrapped in depth JSON arrays."""
    return b"[" * depth + innermost + b"]" * depth


@pytest.mark.parametrize("shape", sorted(DEEPLY_NESTED))
@pytest.mark.parametrize("method,path", JSON_ROUTES)
def test_json_nested_a_thousand_levels_is_400(client, method, path, shape):
    """A body nested past the parser's recursion limit is a client error."""
    response = client.request(method, path, data=DEEPLY_NESTED[shape],
                              headers=JSON_TYPE)
    assert_refused(response, 400, "invalid_body")


def test_json_depth_limit_is_exact(client):
    """MAX_JSON_DEPTH levels parse; one more is refused as too deep."""
    # The object is one level, so the count holds one level fewer.
    deepest = b'{"word": "deep", "count": ' + nested_lists(
        MAX_JSON_DEPTH - 1) + b"}"
    assert_refused(client.post("/words", data=deepest, headers=JSON_TYPE),
                   400, "invalid_count")
    too_deep = b'{"word": "deep", "count": ' + nested_lists(
        MAX_JSON_DEPTH) + b"}"
    response = client.post("/words", data=too_deep, headers=JSON_TYPE)
    assert_refused(response, 400, "invalid_body")
    assert str(MAX_JSON_DEPTH) in response.json()["error"]["message"]


@pytest.mark.parametrize("text", [
    "[" * 1000, "{" * 1000, '"' + "[" * 1000, "\\" + "[" * 1000,
    '\\"' + "{[" * 500])
def test_brackets_inside_strings_are_not_nesting(client, text):
    """Brackets in a string, escaped quotes before them too, are text."""
    response = client.post("/texts", json={"text": text + " word"})
    assert response.status_code == 200, response.text
    assert response.json() == {"counted": {"word": 1}, "words": 1}


@pytest.mark.parametrize("body", [
    b'{"word": "first", "word": "second"}',
    b'{"word": "first", "w\\u006frd": "second"}',  # same key once decoded
])
def test_duplicate_keys_are_400_and_store_nothing(client, body):
    """A key given twice is refused, not silently "last one wins"."""
    response = client.post("/words", data=body, headers=JSON_TYPE)
    assert_refused(response, 400, "invalid_body")
    assert "word" in response.json()["error"]["message"]
    for word in ("first", "second"):
        assert_refused(client.get("/words/" + word), 404, "word_not_found")


@pytest.mark.parametrize("method,path,body", [
    ("PUT", "/words/twice", b'{"count": 1, "count": 2}'),
    ("PATCH", "/words/twice", b'{"increment": 1, "increment": 2}'),
    ("POST", "/texts", b'{"text": "one", "text": "two"}'),
    ("POST", "/predict/model",
     b'{"instances": [{"b64": "", "b64": ""}]}'),
    ("POST", f"/v2/models/{MODEL}/infer",
     b'{"inputs": [{"name": "image", "name": "images", "shape": [1],'
     b' "datatype": "BYTES", "data": [""]}]}'),
])
def test_duplicate_keys_are_400_on_every_json_route(client, method, path,
                                                    body):
    """Duplicates are refused at any depth, on every JSON route."""
    response = client.request(method, path, data=body, headers=JSON_TYPE)
    assert_refused(response, 400, "invalid_body")
    assert_refused(client.get("/words/twice"), 404, "word_not_found")
    assert client.get("/words").json()["total"] == 0


@pytest.mark.parametrize("query", [
    "limit=%B9", "limit=%B2", "offset=%B3", "limit=1%B9",
    "limit=" + "1" * 5000, "offset=" + "0" * 5000 + "1",
])
def test_list_query_with_non_ascii_or_endless_digits_is_400(client, query):
    """Only short ASCII digits are a limit or an offset."""
    assert_refused(client.get("/words?" + query), 400, "invalid_query")


@pytest.mark.parametrize("top_k", ["%B2", "%B9", "1%B3", "9" * 5000])
def test_top_k_with_non_ascii_or_endless_digits_is_400(client, top_k):
    """Superscript digits, which str.isdigit accepts, are no top_k."""
    response = client.post("/predict/model?top_k=" + top_k)
    assert_refused(response, 400, "invalid_top_k")


@pytest.mark.parametrize("charset,body", [
    ("idna", b"xn--a-"),  # IDNA raises UnicodeError, not its subclass
    ("idna", b"hello"),
    ("punycode", b"hello-"),
    ("unicode_escape", b"\\N{LATIN SMALL LETTER A}"),
    ("raw_unicode_escape", b"\\u0061"),
    ("undefined", b"hello"),
    ("charmap", b"hello"),
    ("rot13", b"uryyb"),
    ("base64", b"aGVsbG8="),
    ("hex", b"68656c6c6f"),
    ("zlib", zlib.compress(b"hello")),
    ("bz2", b"hello"),
    ("no-such-charset", b"hello"),
])
def test_texts_refuse_codecs_that_are_no_charset(client, charset, body):
    """Only character sets decode a text body; other codecs are a 400."""
    response = client.post(
        "/texts", data=body,
        headers={"Content-Type": f"text/plain; charset={charset}"})
    assert_refused(response, 400, "invalid_text")
    assert client.get("/words").json()["total"] == 0


@pytest.mark.parametrize("charset,body,word", [
    ("utf-7", b"caf+AOk-", "café"),
    ("UTF-16LE", "café".encode("utf-16-le"), "café"),
    ("koi8-r", "мир".encode("koi8-r"), "мир"),
    ("shift_jis", "ガイド".encode("shift_jis"), "ガイド"),
])
def test_texts_accept_real_character_sets(client, charset, body, word):
    """Real character sets, old and odd ones included, still decode."""
    response = client.post(
        "/texts", data=body,
        headers={"Content-Type": f"text/plain; charset={charset}"})
    assert response.status_code == 200, response.text
    assert response.json()["counted"] == {word: 1}


def raw_request(url, method, path, body=None, headers=None):
    """Send one request with http.client, exactly as given; return it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port,
                                            timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/", 200),
    ("GET", "/words", 200),
    ("GET", "/words/absent", 404),
    ("POST", "/words", 415),
    ("GET", "/nowhere", 404),
    ("DELETE", "/words", 405),
    ("HEAD", "/words", 200),
    ("GET", "/openapi.json", 200),
    ("GET", "/docs", 200),
    ("GET", "/docs/", 301),
    ("GET", "/docs/swagger-ui.css", 200),
    ("GET", "/docs/swagger-init.js", 200),
    ("GET", "/docs/missing.js", 404),
    ("GET", "/health/live", 200),
    ("GET", "/models", 200),
    ("GET", "/v2", 200),
    ("GET", "/v2/health/ready", 200),
    ("GET", f"/v2/models/{MODEL}", 200),
    ("GET", "/v2/models/unknown", 404),
    ("GET", "/v2/nowhere", 404),
    ("DELETE", f"/v2/models/{MODEL}", 405),
    ("POST", f"/v2/models/{MODEL}/infer", 400),
])
def test_every_response_says_nosniff(server, method, path, status):
    """Browsers must not guess a type: JSON or errors are never HTML."""
    got, headers, _ = raw_request(server.url, method, path)
    assert got == status
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_unhandled_errors_say_nosniff(tmp_path):
    """Bottle's own 500 page, built after the handler failed, has it too."""
    with RunningServer(make_settings(tmp_path)) as running:
        running.parts.store.close()
        with Client(running.url) as client:
            response = client.get("/words/anything")
    assert_refused(response, 500, "internal_error")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_oversized_body_error_says_nosniff(tmp_path):
    """A 413 raised while reading the body carries the header too."""
    settings = make_settings(tmp_path, max_body_bytes=64)
    with RunningServer(settings) as running, Client(running.url) as client:
        response = client.post("/texts", json={"text": "word " * 100})
    assert_refused(response, 413, "body_too_large")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def csp_directives(header):
    """Return a Content-Security-Policy header as ``{directive: [values]}``."""
    directives = {}
    for directive in filter(None, (part.strip()
                                   for part in header.split(";"))):
        name, *values = directive.split()
        directives[name.lower()] = values
    return directives


def test_docs_page_has_a_strict_content_security_policy(client):
    """The page runs only its own scripts and cannot be framed."""
    page = client.get("/docs")
    assert page.status_code == 200
    policy = csp_directives(page.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    for directive, values in policy.items():
        assert "*" not in values, directive
        assert not any(value.startswith(("http:", "https:"))
                       for value in values), directive
    # Scripts fall back to default-src: no inline or evaluated code.
    assert "script-src" not in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_docs_page_has_no_inline_script(client):
    """Every script of the page is a file the policy allows."""
    page = client.get("/docs").text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts
    for attributes, content in scripts:
        assert re.search(r'\ssrc="/docs/[^"]+"', attributes)
        assert content.strip() == ""
    assert not re.search(r"\son\w+\s*=", page)  # no inline event handlers


def test_docs_init_script_starts_swagger_ui_on_this_document(client):
    """The script the page runs points Swagger UI at /openapi.json."""
    script = client.get("/docs/swagger-init.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "SwaggerUIBundle(" in script.text
    assert '"/openapi.json"' in script.text
    # The default validator badge would send the document's URL to a
    # third party's server and load an image the policy forbids.
    assert "validatorUrl: null" in script.text


@pytest.mark.parametrize("asset", ["swagger-ui.css", "swagger-ui-bundle.js",
                                   "swagger-init.js", "favicon-32x32.png"])
def test_docs_assets_carry_the_same_policy(client, asset):
    """The page's files carry the page's policy and framing rule."""
    response = client.get("/docs/" + asset)
    assert response.status_code == 200
    assert csp_directives(response.headers["Content-Security-Policy"])[
        "default-src"] == ["'self'"]
    assert response.headers["X-Frame-Options"] == "DENY"
