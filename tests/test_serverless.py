"""The Lambda handler answers API Gateway events as the server answers HTTP.

Events are written as AWS documents them: a REST API's proxy event
(payload format 1.0), an HTTP API's (2.0) and a function URL's (2.0),
image bodies base64-encoded with ``isBase64Encoded``. Each answer is
compared with the one a real cheroot server gives the same request. The
last tests run ``python -m awslambdaric app.serverless.handler``, the
image's entry point, against a loopback Lambda Runtime API and time its
cold start.
"""

import base64
import importlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.settings import PROJECT_ROOT
from tests.conftest import DATA

CHELSEA = (DATA / "chelsea.jpg").read_bytes()
ACCOUNT = "123456789012"
COLD_START_TIMEOUT = 120
# Request headers AWS adds or forwards; the app must cope with them all.
FORWARDED = {"X-Forwarded-For": "192.0.2.10", "X-Forwarded-Port": "443",
             "X-Forwarded-Proto": "https", "User-Agent": "curl/8.5.0",
             "Accept": "*/*"}


class Context:
    """The attributes of Lambda's context object that a handler may read."""

    function_name = "wordcount"
    function_version = "$LATEST"
    invoked_function_arn = (
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:wordcount")
    memory_limit_in_mb = 2048
    aws_request_id = "8f5c1e6a-0f3c-4d1b-9a53-6a4f2b1e0c11"
    log_group_name = "/aws/lambda/wordcount"
    log_stream_name = "2026/12/02/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self):
        """Return the time left, as Lambda's context does."""
        return 30000


def encoded(body):
    """Return ``(body text, isBase64Encoded)`` as API Gateway sends it."""
    if body is None:
        return None, False
    if isinstance(body, bytes):
        return base64.b64encode(body).decode("ascii"), True
    return body, False


def rest_event(method, path, query=None, headers=None, body=None):
    """Return a REST API proxy-integration event (payload format 1.0)."""
    headers = {"Host": "abc123defg.execute-api.us-east-1.amazonaws.com",
               **FORWARDED, **(headers or {})}
    text, is_base64 = encoded(body)
    query = query or None
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value]
                              for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": (
            {name: [value] for name, value in query.items()}
            if query else None),
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123defg",
            "domainName": "abc123defg.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123defg",
            "extendedRequestId": "Jq0bVHmYIAMEV3A=",
            "httpMethod": method,
            "identity": {"accessKey": None, "accountId": None,
                         "caller": None, "cognitoIdentityId": None,
                         "sourceIp": "192.0.2.10", "user": None,
                         "userAgent": "curl/8.5.0", "userArn": None},
            "path": "/prod" + path,
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": "02/Dec/2026:03:40:00 +0000",
            "requestTimeEpoch": 1795999200000,
            "resourceId": "a1b2c3",
            "resourcePath": "/{proxy+}",
            "stage": "prod",
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


def http_api_event(method, path, query=None, headers=None, body=None,
                   domain="abc123defg.execute-api.us-east-1.amazonaws.com",
                   api_id="abc123defg"):
    """Return an HTTP API event (payload format 2.0)."""
    headers = {"host": domain, **{name.lower(): value for name, value in
                                  {**FORWARDED, **(headers or {})}.items()}}
    text, is_base64 = encoded(body)
    raw_query = "&".join(f"{name}={value}"
                         for name, value in (query or {}).items())
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {"method": method, "path": path,
                     "protocol": "HTTP/1.1", "sourceIp": "192.0.2.10",
                     "userAgent": "curl/8.5.0"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "02/Dec/2026:03:40:00 +0000",
            "timeEpoch": 1795999200000,
        },
        "isBase64Encoded": is_base64,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if text is not None:
        event["body"] = text
    return event


def function_url_event(method, path, query=None, headers=None, body=None):
    """Return a function URL event: payload 2.0 from a lambda-url host."""
    url_id = "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6"
    return http_api_event(method, path, query, headers, body,
                          domain=f"{url_id}.lambda-url.us-east-1.on.aws",
                          api_id=url_id)


EVENTS = {"rest-api-v1": rest_event, "http-api-v2": http_api_event,
          "function-url": function_url_event}


@pytest.fixture(scope="module")
def serverless(tmp_path_factory):
    """Import app.serverless as Lambda's init phase does, settings from env.

    The module builds the service when it is imported, from APP_
    variables; here they point its SQLite file at a scratch folder.
    """
    scratch = tmp_path_factory.mktemp("lambda")
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("APP_")]:
            patch.delenv(name)
        patch.setenv("APP_SQLITE_PATH", str(scratch / "words.sqlite3"))
        patch.setenv("APP_MODEL_POLL_SECONDS", "0")
        sys.modules.pop("app.serverless", None)
        module = importlib.import_module("app.serverless")
    try:
        yield module
    finally:
        module.PARTS.close()
        sys.modules.pop("app.serverless", None)


def invoke(serverless, event):
    """Return ``(status, headers, body bytes)`` of the handler's answer."""
    answer = serverless.handler(json.loads(json.dumps(event)), Context())
    json.dumps(answer)  # what Lambda sends back must be JSON
    headers = answer.get("headers") or {
        name: values[-1]
        for name, values in answer.get("multiValueHeaders", {}).items()}
    body = answer["body"].encode("utf-8")
    if answer["isBase64Encoded"]:
        body = base64.b64decode(answer["body"])
    return (answer["statusCode"],
            {name.lower(): value for name, value in headers.items()}, body)


def over_http(client, method, path, query=None, headers=None, body=None):
    """Return ``(status, headers, body bytes)`` from the real server."""
    answer = client.request(method, path, params=query, headers=headers,
                            data=body)
    return (answer.status_code,
            {name.lower(): value for name, value in answer.headers.items()},
            answer.content)


def both(serverless, client, kind, method, path, query=None, headers=None,
         body=None):
    """Send one request to the handler as ``kind`` and to the server."""
    event = EVENTS[kind](method, path, query, headers, body)
    return (invoke(serverless, event),
            over_http(client, method, path, query, headers, body))


def same_answer(lambda_answer, http_answer, headers=("content-type",)):
    """Assert status, the named headers and the body are the same."""
    assert lambda_answer[0] == http_answer[0]
    for name in headers:
        assert lambda_answer[1].get(name) == http_answer[1].get(name), name
    assert lambda_answer[2] == http_answer[2]


@pytest.mark.parametrize("kind", EVENTS)
def test_a_word_is_created_and_read_as_over_http(serverless, client, kind):
    """POST /words then GET it: the same answers, status and Location."""
    word = f"lambda{kind.replace('-', '')}"
    json_type = {"Content-Type": "application/json"}
    created = both(serverless, client, kind, "POST", "/words",
                   headers=json_type,
                   body=json.dumps({"word": word.upper(), "count": 3}))
    same_answer(*created, headers=("content-type", "location"))
    assert created[0][0] == 201
    read = both(serverless, client, kind, "GET", f"/words/{word}")
    same_answer(*read)
    assert json.loads(read[0][2]) == {"word": word, "count": 3}
    counted = both(serverless, client, kind, "PATCH", f"/words/{word}",
                   headers=json_type, body='{"increment": 2}')
    same_answer(*counted)
    listed = both(serverless, client, kind, "GET", "/words",
                  query={"prefix": word, "limit": "5"})
    same_answer(*listed)
    assert json.loads(listed[0][2])["words"] == [
        {"word": word, "count": 5}]


@pytest.mark.parametrize("kind", EVENTS)
def test_a_base64_image_body_is_classified_as_over_http(
        serverless, client, kind):
    """A raw JPEG body, base64 in the event: Egyptian Mau, as over HTTP."""
    (status, headers, body), over = both(
        serverless, client, kind, "POST", "/predict/model/v1",
        query={"top_k": "3"}, headers={"Content-Type": "image/jpeg"},
        body=CHELSEA)
    assert status == over[0] == 200
    assert headers["x-model-version"] == over[1]["x-model-version"] == "1"
    answer, expected = json.loads(body), json.loads(over[2])
    assert answer["model"] == expected["model"]
    (classes,) = [item["classes"] for item in answer["predictions"]]
    (wanted,) = [item["classes"] for item in expected["predictions"]]
    assert [(c["label"], c["index"]) for c in classes] == [
        (c["label"], c["index"]) for c in wanted]
    assert classes[0]["label"] == "Egyptian Mau"
    for got, want in zip(classes, wanted):
        assert got["score"] == pytest.approx(want["score"], abs=1e-5)


@pytest.mark.parametrize("kind", EVENTS)
def test_a_multipart_upload_is_classified(serverless, client, kind):
    """The form upload browsers send arrives whole through the event."""
    boundary = "----lambdaBoundary7MA4YWxkTrZu0gW"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; "
            'name="image"; filename="chelsea.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode() + CHELSEA + (
        f"\r\n--{boundary}--\r\n").encode()
    (status, _, answer), over = both(
        serverless, client, kind, "POST", "/predict/model",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        body=body)
    assert status == over[0] == 200
    best = json.loads(answer)["predictions"][0]["classes"][0]
    assert best["index"] == 285


@pytest.mark.parametrize("kind", EVENTS)
def test_errors_are_the_services_json_errors(serverless, client, kind):
    """A missing word: the same 404 and error body as over HTTP."""
    same_answer(*both(serverless, client, kind, "GET", "/words/ghost"))
    refused = both(serverless, client, kind, "POST", "/predict/model",
                   headers={"Content-Type": "image/jpeg"},
                   body=b"not an image")
    same_answer(*refused)
    assert json.loads(refused[0][2])["error"]["code"] == "invalid_image"
    # An error may echo the request: browsers must not sniff it as HTML.
    assert refused[0][1]["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("kind", EVENTS)
def test_text_and_binary_answers_are_encoded_as_aws_expects(
        serverless, client, kind):
    """The page is text; its icon goes base64 with isBase64Encoded."""
    page = serverless.handler(EVENTS[kind]("GET", "/"), Context())
    assert page["isBase64Encoded"] is False
    assert 'href="/docs"' in page["body"]
    icon = serverless.handler(EVENTS[kind]("GET", "/page/icon.svg"),
                              Context())
    assert icon["isBase64Encoded"] is True
    assert base64.b64decode(icon["body"]) == client.get(
        "/page/icon.svg").content


# --- the image's entry point, against a loopback Runtime API ---------------

class RuntimeApiHandler(BaseHTTPRequestHandler):
    """Answer the runtime client from the :class:`RuntimeApi` it serves."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        """Hand out the next event, holding the request until there is one."""
        api = self.server.api
        if self.path != api.PREFIX + "/invocation/next":
            return self._send(404, b"{}")
        if api.first_next is None:
            api.first_next = time.perf_counter()
        try:
            request_id, event = api.events.get(timeout=60)
        except queue.Empty:
            return self._send(500, b"{}")
        deadline = int(time.time() * 1000) + 60000
        self._send(200, json.dumps(event).encode(), {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline),
            "Lambda-Runtime-Invoked-Function-Arn":
                Context.invoked_function_arn,
            "Lambda-Runtime-Trace-Id":
                "Root=1-5759e988-bd862e3fe1be46a994272793"})

    def do_POST(self):
        """Take a response or an error, with the time it arrived."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.api.results.put((time.perf_counter(), self.path, body))
        self._send(202, b'{"status": "OK"}')

    def _send(self, status, body, headers=None):
        """Send a JSON answer with its length."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        """Keep the test output quiet."""


class RuntimeApi:
    """The Lambda Runtime API's invocation routes, on a loopback port.

    ``/next`` hands out the queued events one at a time (and holds the
    request while there is none, as Lambda does); responses and errors
    posted back are queued for the test, each with when it arrived.
    """

    PREFIX = "/2018-06-01/runtime"

    def __init__(self):
        """Start serving on 127.0.0.1, port 0, in a daemon thread."""
        self.events = queue.Queue()
        self.results = queue.Queue()
        self.first_next = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0),
                                          RuntimeApiHandler)
        self.server.daemon_threads = True
        self.server.api = self
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,),
                         daemon=True).start()

    def invoke(self, event, timeout):
        """Queue an event; return the arrival time and the answer."""
        request_id = str(uuid.uuid4())
        self.events.put((request_id, event))
        arrived, path, body = self.results.get(timeout=timeout)
        assert path == f"{self.PREFIX}/invocation/{request_id}/response", (
            path, body[:2000])
        return arrived, json.loads(body)

    def close(self):
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def runtime_api():
    """Yield a loopback Runtime API."""
    api = RuntimeApi()
    yield api
    api.close()


def start_function(runtime_api, tmp_path):
    """Start the image's command, ``python -m awslambdaric <handler>``."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("APP_")}
    env.update(AWS_LAMBDA_RUNTIME_API=runtime_api.address,
               APP_SQLITE_PATH=str(tmp_path / "words.sqlite3"),
               APP_MODEL_POLL_SECONDS="0", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen(
        [sys.executable, "-m", "awslambdaric", "app.serverless.handler"],
        cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_cold_start_of_the_image_entry_point(runtime_api, tmp_path, capsys):
    """The runtime client imports the handler, takes events, answers.

    Cold start is timed from the process's start to the first
    prediction's answer arriving at the Runtime API: Python, the import
    (settings, model load and warm-up) and that prediction.
    """
    started = time.perf_counter()
    function = start_function(runtime_api, tmp_path)
    try:
        event = function_url_event("POST", "/predict/model",
                                   headers={"Content-Type": "image/jpeg"},
                                   body=CHELSEA)
        arrived, answer = runtime_api.invoke(event, COLD_START_TIMEOUT)
        cold = arrived - started
        init = runtime_api.first_next - started
        assert answer["statusCode"] == 200, answer
        best = json.loads(answer["body"])["predictions"][0]["classes"][0]
        assert best["label"] == "Egyptian Mau"
        warm_began = time.perf_counter()
        arrived, answer = runtime_api.invoke(event, COLD_START_TIMEOUT)
        warm = arrived - warm_began
        assert answer["statusCode"] == 200
        word = http_api_event("PUT", "/words/cold",
                              headers={"Content-Type": "application/json"},
                              body='{"count": 7}')
        _, answer = runtime_api.invoke(word, COLD_START_TIMEOUT)
        assert answer["statusCode"] == 201
        assert json.loads(answer["body"]) == {"word": "cold", "count": 7}
        assert function.poll() is None, "the runtime client exited"
    finally:
        function.kill()
        _, log = function.communicate(timeout=30)
    with capsys.disabled():
        print(f"\ncold start: init (Python, import, model load and warm-up) "
              f"{init:.2f} s, to the first prediction's answer {cold:.2f} "
              f"s; a warm prediction {warm * 1000:.0f} ms")
    assert init < cold


def test_the_image_pins_the_runtime_client_the_tests_run():
    """Dockerfile.lambda installs the awslambdaric these tests exercise."""
    dockerfile = (PROJECT_ROOT / "Dockerfile.lambda").read_text()
    pins = [line.strip() for line in
            (PROJECT_ROOT / "requirements-dev.txt").read_text().splitlines()
            if line.startswith("awslambdaric==")]
    assert len(pins) == 1 and pins[0] in dockerfile
    assert 'ENTRYPOINT ["/opt/venv/bin/python", "-m", "awslambdaric"]' in (
        dockerfile)
    assert 'CMD ["app.serverless.handler"]' in dockerfile
