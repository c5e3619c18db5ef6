"""Operating the service: metrics, request ids, logs, keys, CORS, limits."""

import functools
import hashlib
import io
import json
import logging
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app.ops.request_log import (
    ACCESS_LOGGER, REQUEST_ID, AccessLineHandler, JsonLinesFormatter,
    RequestIdFilter, log_access)
from app.settings import PROJECT_ROOT
from app.web.access import client_address
from tests.conftest import (
    DATA, TIMEOUT, Client, RunningServer, ServiceProcess, make_settings)

CHELSEA = (DATA / "chelsea.jpg").read_bytes()
PREFIX = "model_server"


def scrape(client):
    """Return ``{(sample name, sorted labels): value}`` from /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = \
                sample.value
    return samples


def value(samples, name, **labels):
    """Return one sample's value, 0 if it is not there."""
    return samples.get((f"{PREFIX}_{name}", tuple(sorted(labels.items()))),
                       0)


def upload(client, path, *images):
    """POST images as multipart fields."""
    return client.post(path, files=[("image", (f"{n}.jpg", data))
                                    for n, data in enumerate(images)])


def test_metrics_count_known_traffic_exactly(tmp_path):
    """After a known set of requests every counter says exactly that."""
    settings = make_settings(tmp_path, interpreters=1,
                             lone_request_threads=0)
    with RunningServer(settings, assembled=True) as running:
        with Client(running.url) as client:
            for word in ("one", "two", "three"):
                assert client.post("/words", json={"word": word}).ok
            assert client.get("/words/one").ok
            assert client.get("/words/two").ok
            assert client.get("/words/absent").status_code == 404
            assert client.get("/no/such/route").status_code == 404
            assert upload(client, "/predict/model/v1", CHELSEA).ok
            assert upload(client, "/predict/model/v1", CHELSEA,
                          CHELSEA).ok
            assert upload(client, "/predict/model/v1",
                          b"not an image").status_code == 400
            samples = scrape(client)
    requests_of = functools.partial(value, samples, "http_requests_total")
    assert requests_of(route="/words", method="POST", status="201") == 3
    assert requests_of(route="/words/<word>", method="GET",
                       status="200") == 2
    assert requests_of(route="/words/<word>", method="GET",
                       status="404") == 1
    assert requests_of(route="unmatched", method="GET", status="404") == 1
    predict_route = "/predict/model/v<version:re:[0-9]{1,10}>"
    assert requests_of(route=predict_route, method="POST",
                       status="200") == 2
    assert value(samples, "http_request_duration_seconds_count",
                 route="/words", method="POST") == 3
    model = {"model": "efficientnet-lite0", "version": "1"}
    assert value(samples, "predictions_total", label="", outcome="ok",
                 **model) == 3
    assert value(samples, "predictions_total", label="",
                 outcome="invalid_image", **model) == 1
    assert value(samples, "inference_duration_seconds_count", **model) == 2
    assert value(samples, "inference_queue_duration_seconds_count",
                 **model) == 2
    assert value(samples, "inference_batch_size_sum", **model) == 3
    assert value(samples, "image_decode_duration_seconds_count") == 3
    assert value(samples, "store_operation_duration_seconds_count",
                 operation="create", outcome="ok") == 3
    assert value(samples, "store_operation_duration_seconds_count",
                 operation="get", outcome="ok") == 2
    assert value(samples, "store_operation_duration_seconds_count",
                 operation="get", outcome="word_not_found") == 1
    # The scrape itself is the one request in flight.
    assert value(samples, "http_requests_in_flight") == 1
    info = [labels for (name, labels) in samples
            if name == f"{PREFIX}_info"]
    assert info and dict(info[0])["model"] == "efficientnet-lite0"


def test_metric_names_follow_prometheus_conventions(client):
    """Base units, _total counters, one prefix, real histograms."""
    assert client.post("/words", json={"word": "named"}).ok
    samples = scrape(client)
    families = {name for name, _ in samples}
    assert all(name.startswith(PREFIX) for name in families)
    histograms = {name[:-len("_bucket")] for name in families
                  if name.endswith("_bucket")}
    assert {f"{PREFIX}_http_request_duration_seconds",
            f"{PREFIX}_store_operation_duration_seconds"} <= histograms
    assert all(name.endswith(("_seconds", "_size")) for name in histograms)


def test_request_id_is_kept_when_sane_and_made_when_not(client):
    """A sane X-Request-ID comes back; others are replaced by a new id."""
    sent = "abc-123.def"
    response = client.get("/words", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] == sent
    for bad in ("x" * 200, "has space", "semi;colon"):
        answer = client.get("/no/such", headers={"X-Request-ID": bad})
        assert answer.status_code == 404
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"])
    first = client.get("/health/live").headers["X-Request-ID"]
    assert first != client.get("/health/live").headers["X-Request-ID"]


def test_log_lines_carry_the_request_id(tmp_path):
    """The access line and a warning written meanwhile name the request."""
    access = tmp_path / "access.log"
    env = {"APP_SQLITE_PATH": str(tmp_path / "words.sqlite3"),
           "APP_STORE": "redis", "APP_REDIS_URL": "redis://127.0.0.1:1/0",
           "APP_REDIS_TIMEOUT": "0.2"}
    with open(access, "w") as stdout:
        with ServiceProcess(env, stdout=stdout) as service:
            response = requests.get(service.url + "/health/ready", headers={
                "X-Request-ID": "probe-1"}, timeout=TIMEOUT)
            assert response.status_code == 503
            assert service.stop() == 0
    lines = [json.loads(line) for line in access.read_text().splitlines()]
    (line,) = [line for line in lines if line["request_id"] == "probe-1"]
    assert line["method"] == "GET" and line["route"] == "/health/ready"
    assert line["status"] == 503 and line["bytes"] > 0
    assert line["client"] == "127.0.0.1" and line["duration_seconds"] > 0
    warnings = [json.loads(entry) for entry in service.log
                if entry.startswith("{")
                and json.loads(entry)["level"] == "warning"]
    assert any(entry["request_id"] == "probe-1"
               and "readiness check store failed" in entry["message"]
               for entry in warnings)


def test_access_line_is_the_same_without_a_log_record(monkeypatch):
    """The direct access line is byte for byte the logging module's."""
    stream = io.StringIO()
    handler = AccessLineHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger(ACCESS_LOGGER)
    monkeypatch.setattr(logger, "handlers", [handler])
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr("time.time", lambda: 1764675600.0625)
    fields = {"request_id": "id-1", "method": "GET", "route": "/words/<word>",
              "path": "/words/caf\u00e9\"", "status": 200,
              "duration_seconds": 0.000123, "bytes": 31,
              "client": "127.0.0.1", "key": None, "model": None,
              "version": 2, "label": "tabby", "error": None}
    level = logger.level
    # setLevel, unlike setting the attribute, clears the level caches.
    logger.setLevel(logging.INFO)
    token = REQUEST_ID.set("id-1")
    try:
        assert handler.takes_fields()
        log_access(fields)
        # Any filter on the logger sends the line through a LogRecord.
        monkeypatch.setattr(logger, "filters", [lambda record: True])
        log_access(fields)
    finally:
        REQUEST_ID.reset(token)
        logger.setLevel(level)
    direct, recorded = stream.getvalue().splitlines()
    assert direct == recorded
    assert json.loads(direct) == {
        "time": "2025-12-02T11:40:00.062Z", "level": "info",
        "logger": "access", **fields}


def make_keys(tmp_path):
    """Write a key file with one key per scope and return the keys."""
    keys = {"reader": ("words:read",), "writer": ("words:write",),
            "predictor": ("predict",), "admin": ("admin",)}
    secrets = {name: f"secret-of-{name}-0123456789" for name in keys}
    lines = ["# name sha256 scopes"]
    lines += [f"{name} {hashlib.sha256(secrets[name].encode()).hexdigest()} "
              f"{','.join(scopes)}" for name, scopes in keys.items()]
    path = tmp_path / "keys.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, secrets


ROUTES = {
    "words:read": ("GET", "/words", {}),
    "words:write": ("POST", "/words", {"json": {"word": "matrix"}}),
    "predict": ("POST", "/predict/model/v1",
                {"data": CHELSEA, "headers": {"Content-Type": "image/jpeg"}}),
    "admin": ("GET", "/metrics", {}),
}


@pytest.fixture
def keyed(tmp_path):
    """Yield a client of a server with API keys, and the keys."""
    path, secrets = make_keys(tmp_path)
    settings = make_settings(tmp_path, api_keys_file=path,
                             metrics_public=False, docs_public=False)
    with RunningServer(settings) as running, Client(running.url) as client:
        yield client, secrets, path


def call(client, scope, headers=None):
    """Call the route of a scope with the given headers."""
    method, path, options = ROUTES[scope]
    options = dict(options)
    options["headers"] = {**options.get("headers", {}), **(headers or {})}
    return client.request(method, path, **options)


def test_auth_matrix_every_key_against_every_scope(keyed):
    """A key reaches exactly the routes of its scope; others get 403."""
    client, secrets, _ = keyed
    scopes = {"reader": "words:read", "writer": "words:write",
              "predictor": "predict", "admin": "admin"}
    for name, secret in secrets.items():
        for scope in ROUTES:
            response = call(client, scope,
                            {"Authorization": f"Bearer {secret}"})
            if scopes[name] == scope:
                assert response.status_code in (200, 201), (name, scope)
            else:
                assert response.status_code == 403, (name, scope)
                assert response.json()["error"]["code"] == "forbidden"
    assert call(client, "predict", {"X-API-Key": secrets["predictor"]}).ok


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"},
    {"Authorization": "Basic dXNlcjpwYXNz"}])
def test_missing_or_wrong_key_is_401_with_a_challenge(keyed, headers):
    """No valid key: 401, WWW-Authenticate: Bearer, code unauthorized."""
    client, _, _ = keyed
    for scope in ROUTES:
        response = call(client, scope, headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "unauthorized"
    for path in ("/docs", "/openapi.json"):
        assert client.get(path, headers=headers).status_code == 401


def test_health_stays_open_with_keys(keyed):
    """Probes need no key."""
    client, _, _ = keyed
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200


def test_revoked_key_stops_working_without_a_restart(keyed):
    """The key file is re-read when it changes."""
    client, secrets, path = keyed
    bearer = {"Authorization": f"Bearer {secrets['reader']}"}
    assert call(client, "words:read", bearer).status_code == 200
    kept = [line for line in path.read_text().splitlines()
            if not line.startswith("reader ")]
    path.write_text("\n".join(kept) + "\n")
    deadline = time.monotonic() + 5
    while call(client, "words:read", bearer).status_code == 200:
        assert time.monotonic() < deadline, "revoked key still works"
        time.sleep(0.1)
    assert call(client, "words:read", bearer).status_code == 401


def test_keys_command_prints_a_key_and_its_line(tmp_path):
    """api.py keys new gives a key once and the line holding its hash."""
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "api.py"), "keys", "new",
         "alice", "--scopes", "predict,words:read"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    key = result.stdout.splitlines()[1].strip()
    line = result.stdout.splitlines()[3].strip()
    name, digest, scopes = line.split()
    assert name == "alice" and scopes == "predict,words:read"
    assert digest == hashlib.sha256(key.encode()).hexdigest()
    assert key not in line
    bad = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "api.py"), "keys", "new",
         "bob", "--scopes", "root"], capture_output=True, text=True,
        timeout=60)
    assert bad.returncode == 2 and "unknown scope" in bad.stderr


def test_cors_preflight_allowed_and_refused(tmp_path):
    """Listed origins get CORS headers; others get none."""
    settings = make_settings(tmp_path, cors_origins="https://app.example")
    with RunningServer(settings) as running, Client(running.url) as client:
        preflight = client.options("/words", headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == \
            "https://app.example"
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "Content-Type" in \
            preflight.headers["Access-Control-Allow-Headers"]
        simple = client.get("/words", headers={
            "Origin": "https://app.example"})
        assert simple.headers["Access-Control-Allow-Origin"] == \
            "https://app.example"
        refused = client.options("/words", headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in refused.headers
        assert refused.status_code == 405
        other = client.get("/words", headers={"Origin": "https://evil.x"})
        assert "Access-Control-Allow-Origin" not in other.headers


def test_rate_limit_answers_429_with_the_headers(tmp_path):
    """Over the limit: 429, Retry-After, RateLimit and RateLimit-Policy."""
    settings = make_settings(tmp_path, rate_limit="3/60")
    with RunningServer(settings) as running, Client(running.url) as client:
        answers = [client.get("/words") for _ in range(4)]
        assert [answer.status_code for answer in answers] == [
            200, 200, 200, 429]
        assert answers[0].headers["RateLimit-Policy"] == \
            '"default";q=3;w=60'
        assert answers[1].headers["RateLimit"].startswith(
            '"default";r=1;t=')
        limited = answers[3]
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.headers["RateLimit"].startswith('"default";r=0;')
        assert client.get("/health/live").status_code == 200
        samples = scrape(client)
    assert value(samples, "rate_limited_total") == 1


def test_rate_limit_counts_each_key_apart(tmp_path):
    """Two keys have a budget each."""
    path, secrets = make_keys(tmp_path)
    settings = make_settings(tmp_path, rate_limit="2/60",
                             api_keys_file=path)
    with RunningServer(settings) as running, Client(running.url) as client:
        def read(name):
            return client.get("/words", headers={
                "X-API-Key": secrets[name]}).status_code
        path.write_text(path.read_text().replace(" admin\n",
                                                 " admin,words:read\n"))
        assert [read("reader") for _ in range(3)] == [200, 200, 429]
        time.sleep(1.1)  # the key file is looked at once a second
        assert [read("admin") for _ in range(2)] == [200, 200]


@pytest.mark.parametrize("remote,forwarded,client", [
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
    ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.5", "198.51.100.1, 10.0.0.7", "198.51.100.1"),
    ("10.0.0.5", "1.1.1.1, 198.51.100.1", "198.51.100.1"),
    ("10.0.0.5", "", "10.0.0.5"),
])
def test_client_address_believes_only_trusted_proxies(remote, forwarded,
                                                      client):
    """X-Forwarded-For counts only from a trusted peer, read from the right."""
    import ipaddress
    trusted = (ipaddress.ip_network("10.0.0.0/8"),)
    environ = {"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}
    assert client_address(environ, trusted) == client


def test_drain_keeps_serving_while_readiness_says_no(tmp_path):
    """After SIGTERM: ready 503 while words still answer 200, then exit 0."""
    env = {"APP_SQLITE_PATH": str(tmp_path / "words.sqlite3"),
           "APP_DRAIN_SECONDS": "2"}
    with ServiceProcess(env) as service, Client(service.url) as client:
        assert client.get("/health/ready").status_code == 200
        started = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        deadline = started + 1.5
        seen_draining = False
        while time.monotonic() < deadline:
            ready = client.get("/health/ready")
            if ready.status_code == 503:
                seen_draining = True
                assert ready.json()["status"] == "draining"
                assert client.post("/words", json={
                    "word": f"w{int(time.monotonic() * 1000)}"}).ok
            time.sleep(0.05)
        assert seen_draining
        assert service.process.wait(TIMEOUT) == 0
        assert time.monotonic() - started >= 2


def test_protocol_routes_take_the_same_keys_in_their_own_shape(keyed):
    """The V2 and TF Serving routes check keys; errors in their shape."""
    client, secrets, _ = keyed
    model = "efficientnet-lite0"
    v2 = client.get(f"/v2/models/{model}")
    assert v2.status_code == 401
    assert v2.json() == {"error": v2.json()["error"], "code": "unauthorized"}
    assert v2.headers["WWW-Authenticate"] == "Bearer"
    v1 = client.get(f"/v1/models/{model}")
    assert v1.status_code == 401 and list(v1.json()) == ["error"]
    predictor = {"Authorization": f"Bearer {secrets['predictor']}"}
    assert client.get(f"/v2/models/{model}", headers=predictor).ok
    assert client.get(f"/v1/models/{model}", headers=predictor).ok
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2").status_code == 200
    index = client.post("/v2/repository/index", headers=predictor)
    assert index.status_code == 403 and index.json()["code"] == "forbidden"
    admin = {"X-API-Key": secrets["admin"]}
    assert client.post("/v2/repository/index", headers=admin).ok
