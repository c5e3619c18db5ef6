"""The word-count HTTP contract, route by route, over a real server.

Every test that uses the ``client`` fixture runs once with the SQLite store
and once with the Redis store: the routes must not notice the difference.
"""

import socket

import pytest

from tests.conftest import (
    Client, RunningServer, make_settings, redis_settings)
from tests.redis_server import free_port

MAX_COUNT = 2 ** 63 - 1


@pytest.fixture(params=["sqlite", "redis"])
def settings(request, tmp_path):
    """Return settings for one test, with each store backend in turn."""
    if request.param == "sqlite":
        return make_settings(tmp_path)
    return redis_settings(tmp_path, request.getfixturevalue("redis_server"))


def post_word(client, word, count=None):
    """Create a word through the API and return the response."""
    body = {"word": word} if count is None else {"word": word, "count": count}
    return client.post("/words", json=body)


def assert_error(response, status, code):
    """Check a JSON error response's status, content type and code."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]


def test_create_returns_201_location_and_normalised_word(client):
    """POST /words stores the normalised word and points to it."""
    response = post_word(client, "  Hello ", 3)
    assert response.status_code == 201
    assert response.headers["Location"] == "/words/hello"
    assert response.json() == {"word": "hello", "count": 3}
    assert client.get("/words/hello").json() == {"word": "hello", "count": 3}


def test_create_without_count_uses_default(client):
    """A word created without a count starts at the default, 0."""
    assert post_word(client, "plain").json() == {"word": "plain", "count": 0}


def test_default_count_comes_from_settings(tmp_path):
    """The default count is the configured one."""
    settings = make_settings(tmp_path, default_count=7)
    with RunningServer(settings) as running, Client(running.url) as client:
        assert post_word(client, "seven").json()["count"] == 7


def test_create_existing_word_is_409_and_keeps_count(client):
    """Creating a stored word again is a conflict that changes nothing."""
    post_word(client, "hello", 3)
    assert_error(post_word(client, "HELLO", 9), 409, "word_exists")
    assert client.get("/words/hello").json()["count"] == 3


@pytest.mark.parametrize("spelling", [
    "Hello", "HELLO", "%20hello%20", "%EF%BC%A8ello"])  # fullwidth H
def test_every_spelling_reads_the_same_word(client, spelling):
    """Case, spaces and width variants address one word."""
    post_word(client, "hello", 5)
    response = client.get("/words/" + spelling)
    assert response.json() == {"word": "hello", "count": 5}


def test_typographic_apostrophe_is_the_ascii_one(client):
    """A curly apostrophe in the path finds the ASCII-apostrophe word."""
    post_word(client, "don't", 1)
    assert client.get("/words/don%E2%80%99t").json()["word"] == "don't"


@pytest.mark.parametrize("word", [
    "", "-start", "end-", "a--b", "under_score", "two words", "a" * 65,
    "semi;colon", 42, None, ["list"]])
def test_invalid_words_are_400(client, word):
    """Words outside the allowed alphabet or length are refused."""
    assert_error(client.post("/words", json={"word": word}), 400,
                 "invalid_word")


@pytest.mark.parametrize("path", ["/words/a--b", "/words/" + "a" * 65,
                                  "/words/%2Dx"])
def test_invalid_word_in_path_is_400(client, path):
    """An invalid word in the path is a 400, not a 404."""
    assert_error(client.get(path), 400, "invalid_word")


@pytest.mark.parametrize("count", [
    True, 1.5, "3", -1, MAX_COUNT + 1, None, [1], {"n": 1}])
def test_invalid_counts_are_400_and_store_nothing(client, count):
    """Non-integer or out-of-range counts store nothing."""
    response = client.post("/words", json={"word": "bad", "count": count})
    assert_error(response, 400, "invalid_count")
    assert_error(client.get("/words/bad"), 404, "word_not_found")


def test_largest_count_is_accepted(client):
    """2**63-1 is a valid count."""
    assert post_word(client, "big", MAX_COUNT).json()["count"] == MAX_COUNT


def test_float_that_looks_integral_is_not_a_count(client):
    """JSON 2.0 is a number but not an integer count."""
    response = client.post("/words", data='{"word": "x", "count": 2.0}',
                           headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_count")


def test_missing_and_unknown_fields_are_400(client):
    """Missing, misspelt and non-object bodies are refused."""
    assert_error(client.post("/words", json={"count": 1}), 400,
                 "missing_field")
    assert_error(client.post("/words", json={"word": "a", "cnt": 1}), 400,
                 "unknown_field")
    assert_error(client.post("/words", json=["a"]), 400, "invalid_body")


def test_read_missing_word_is_404(client):
    """Reading a word never stored is a 404."""
    assert_error(client.get("/words/ghost"), 404, "word_not_found")


def test_put_creates_with_201_then_replaces_with_200(client):
    """PUT creates with 201 and replaces with 200."""
    first = client.put("/words/Tree", json={"count": 4})
    assert first.status_code == 201
    assert first.headers["Location"] == "/words/tree"
    assert first.json() == {"word": "tree", "count": 4}
    second = client.put("/words/tree", json={"count": 0})
    assert second.status_code == 200
    assert second.json() == {"word": "tree", "count": 0}
    assert client.get("/words/tree").json()["count"] == 0


def test_put_with_invalid_count_changes_nothing(client):
    """A refused PUT leaves the stored count as it was."""
    post_word(client, "tree", 4)
    assert_error(client.put("/words/tree", json={"count": -2}), 400,
                 "invalid_count")
    assert_error(client.put("/words/tree", json={}), 400, "missing_field")
    assert client.get("/words/tree").json()["count"] == 4


def test_patch_adds_and_subtracts(client):
    """PATCH adds positive and negative increments."""
    post_word(client, "step", 10)
    assert client.patch("/words/step", json={"increment": 5}).json() == {
        "word": "step", "count": 15}
    response = client.patch("/words/STEP", json={"increment": -15})
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_patch_missing_word_is_404(client):
    """PATCH does not create a missing word."""
    assert_error(client.patch("/words/ghost", json={"increment": 1}), 404,
                 "word_not_found")
    assert_error(client.get("/words/ghost"), 404, "word_not_found")


def test_patch_below_zero_is_409_and_unchanged(client):
    """An increment taking a count below 0 is refused whole."""
    post_word(client, "low", 2)
    assert_error(client.patch("/words/low", json={"increment": -3}), 409,
                 "count_out_of_range")
    assert client.get("/words/low").json()["count"] == 2


def test_patch_above_max_is_409_and_unchanged(client):
    """An increment past 2**63-1 is refused; up to it is fine."""
    post_word(client, "high", MAX_COUNT - 1)
    assert_error(client.patch("/words/high", json={"increment": 2}), 409,
                 "count_out_of_range")
    assert client.get("/words/high").json()["count"] == MAX_COUNT - 1
    assert client.patch("/words/high", json={"increment": 1}).json()[
        "count"] == MAX_COUNT


@pytest.mark.parametrize("increment", [True, 0.5, "1", None,
                                       MAX_COUNT + 1, -MAX_COUNT - 1])
def test_patch_invalid_increment_is_400(client, increment):
    """Increments that are not integers of count size are refused."""
    post_word(client, "step", 1)
    assert_error(client.patch("/words/step", json={"increment": increment}),
                 400, "invalid_increment")
    assert client.get("/words/step").json()["count"] == 1


def test_delete_is_204_then_404(client):
    """DELETE removes the word once; a second DELETE is a 404."""
    post_word(client, "gone", 1)
    response = client.delete("/words/Gone")
    assert response.status_code == 204
    assert response.content == b""
    assert_error(client.get("/words/gone"), 404, "word_not_found")
    assert_error(client.delete("/words/gone"), 404, "word_not_found")


def test_list_sorted_with_total_limit_offset(client):
    """GET /words pages through words sorted by word."""
    for word in ["pear", "apple", "plum", "peach", "fig"]:
        post_word(client, word, len(word))
    page = client.get("/words", params={"limit": 2, "offset": 1}).json()
    assert page == {"words": [{"word": "fig", "count": 3},
                              {"word": "peach", "count": 5}],
                    "total": 5, "limit": 2, "offset": 1}


def test_list_filters_by_normalised_prefix(client):
    """The prefix filter is normalised and may end in a hyphen."""
    for word in ["pear", "apple", "plum", "peach", "p-value"]:
        post_word(client, word)
    page = client.get("/words", params={"prefix": "PE"}).json()
    assert [item["word"] for item in page["words"]] == ["peach", "pear"]
    assert page["total"] == 2
    hyphen = client.get("/words", params={"prefix": "p-"}).json()
    assert [item["word"] for item in hyphen["words"]] == ["p-value"]


def test_list_defaults_come_from_settings(client, settings):
    """Without a limit the configured default page size is used."""
    page = client.get("/words").json()
    assert page == {"words": [], "total": 0,
                    "limit": settings.list_limit_default, "offset": 0}


@pytest.mark.parametrize("query", [
    {"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"limit": -1},
    {"offset": -1}, {"offset": "1.5"}, {"offset": 2 ** 31}])
def test_list_bad_query_is_400(client, query):
    """Limits and offsets out of their bounds are refused."""
    assert_error(client.get("/words", params=query), 400, "invalid_query")


def test_list_bad_prefix_is_400(client):
    """A prefix that no word can start with is refused."""
    assert_error(client.get("/words", params={"prefix": "a*"}), 400,
                 "invalid_prefix")


def test_texts_counts_words_in_json_and_plain_text(client):
    """POST /texts counts words from JSON and from plain text."""
    response = client.post("/texts", json={"text": "The cat, the HAT!"})
    assert response.status_code == 200
    assert response.json() == {"counted": {"the": 2, "cat": 1, "hat": 1},
                               "words": 4}
    plain = client.post("/texts", data="cat x-ray don’t".encode(),
                        headers={"Content-Type": "text/plain"})
    assert plain.json() == {"counted": {"cat": 1, "x-ray": 1, "don't": 1},
                            "words": 3}
    assert client.get("/words/cat").json()["count"] == 2
    assert client.get("/words/the").json()["count"] == 2


def test_texts_honours_declared_charset(client):
    """A text/plain body is decoded by its declared charset."""
    response = client.post(
        "/texts", data="café".encode("latin-1"),
        headers={"Content-Type": "text/plain; charset=latin-1"})
    assert response.json()["counted"] == {"café": 1}


def test_texts_with_no_words_changes_nothing(client):
    """A text without words counts nothing."""
    response = client.post("/texts", json={"text": " -- !! "})
    assert response.json() == {"counted": {}, "words": 0}


def test_texts_overflow_rolls_back_every_word(client):
    """One overflowing word rolls back the whole text."""
    post_word(client, "full", MAX_COUNT)
    response = client.post("/texts", json={"text": "alpha beta full"})
    assert_error(response, 409, "count_out_of_range")
    assert_error(client.get("/words/alpha"), 404, "word_not_found")
    assert client.get("/words/full").json()["count"] == MAX_COUNT


def test_texts_errors(client):
    """Undecodable text, a non-string text and other types are refused."""
    assert_error(client.post("/texts", data=b"\xff\xfe",
                             headers={"Content-Type": "text/plain"}),
                 400, "invalid_text")
    assert_error(client.post("/texts", json={"text": 5}), 400,
                 "invalid_text")
    assert_error(client.post("/texts", data=b"a",
                             headers={"Content-Type": "image/png"}),
                 415, "unsupported_media_type")


@pytest.mark.parametrize("body", [b"{bad", b"", b"[1,", b"\xff",
                                  b'{"word": NaN}'])
def test_malformed_json_is_400(client, body):
    """Bodies that are not JSON, NaN included, are a 400."""
    response = client.post("/words", data=body,
                           headers={"Content-Type": "application/json"})
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize("content_type", ["text/plain", None,
                                          "application/x-www-form-urlencoded"])
def test_json_route_without_json_type_is_415(client, content_type):
    """A JSON route refuses other content types and stores nothing."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/words", data=b'{"word": "a"}', headers=headers)
    assert_error(response, 415, "unsupported_media_type")
    assert_error(client.get("/words/a"), 404, "word_not_found")


def test_json_suffix_types_are_json(client):
    """Content types ending in +json count as JSON."""
    response = client.post(
        "/words", data=b'{"word": "vendor"}',
        headers={"Content-Type": "application/vnd.api+json; charset=utf-8"})
    assert response.status_code == 201


def test_body_over_limit_is_413(tmp_path):
    """Bodies over the limit are refused, sized or chunked."""
    settings = make_settings(tmp_path, max_body_bytes=1024)
    text = "word " * 300
    with RunningServer(settings) as running, Client(running.url) as client:
        assert_error(client.post("/texts", json={"text": text}), 413,
                     "body_too_large")
        # Same body without Content-Length: chunked transfer encoding.
        chunks = iter([b'{"text": "', text.encode(), b'"}'])
        response = client.post("/texts", data=chunks,
                               headers={"Content-Type": "application/json"})
        assert_error(response, 413, "body_too_large")
        assert_error(client.get("/words/word"), 404, "word_not_found")
        fits = client.post("/texts", json={"text": "word " * 100})
        assert fits.json()["words"] == 100


def test_unknown_route_is_json_404(client):
    """Unknown paths get a JSON 404."""
    assert_error(client.get("/nowhere"), 404, "not_found")
    assert_error(client.get("/words/a/b"), 404, "not_found")


@pytest.mark.parametrize("method,path,allowed", [
    ("POST", "/words/hello", {"GET", "PUT", "PATCH", "DELETE"}),
    ("DELETE", "/words", {"GET", "POST"}),
    ("GET", "/texts", {"POST"}),
])
def test_wrong_method_is_405_with_allow(client, method, path, allowed):
    """A known path with the wrong method lists the allowed ones."""
    response = client.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert allowed <= set(response.headers["Allow"].split(","))


def test_bad_content_length_is_400(server):
    """A negative Content-Length is a client error, not a crash."""
    host, port = server.url.rsplit("/", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /words HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: -5\r\nConnection: close\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.split(b" ", 2)[1].startswith(b"4")


def test_health_routes(client):
    """Liveness and readiness answer 200 when the store works."""
    assert client.get("/health/live").json() == {"status": "live"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready",
                            "checks": {"store": "ok", "model": "ok"}}


def test_ready_is_503_when_store_is_gone(tmp_path):
    """Readiness fails with 503 when the store cannot answer."""
    with RunningServer(make_settings(tmp_path)) as running:
        running.parts.store.close()
        with Client(running.url) as client:
            response = client.get("/health/ready")
            assert response.status_code == 503
            assert response.json()["status"] == "unavailable"
            assert response.json()["checks"]["store"].startswith("failed")
            assert client.get("/health/live").status_code == 200
            # A closed store is a bug, not an outage: a JSON 500.
            assert_error(client.get("/words/anything"), 500,
                         "internal_error")


def test_redis_outage_is_503(tmp_path):
    """With Redis unreachable, readiness and word routes answer 503."""
    settings = make_settings(
        tmp_path, store="redis", redis_timeout=1,
        redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with RunningServer(settings) as running, Client(running.url) as client:
        assert client.get("/health/ready").status_code == 503
        assert_error(client.get("/words/anything"), 503, "store_unavailable")
        assert_error(client.post("/words", json={"word": "a"}), 503,
                     "store_unavailable")


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/words", {"word": "newline"}),
    ("GET", "/words", None),
    ("GET", "/words/absent", None),
    ("GET", "/no/such/route", None),
    ("GET", "/v2/models/none", None),
])
def test_json_answers_end_with_a_newline(client, method, path, body):
    """Answers and errors end in a newline, so a shell prompt starts anew."""
    response = client.request(method, path, json=body)
    assert response.headers["Content-Type"] == "application/json"
    assert response.content.endswith(b"}\n")


@pytest.mark.parametrize("raw,word", [
    ("नमस्ते", "\u0928\u092e\u0938\u094d\u0924\u0947"),
    ("İstanbul", "i\u0307stanbul"),
    ("מַיִם", "\u05de\u05b7\u05d9\u05b4\u05dd"),
    ("สวัสดี", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35"),
])
def test_words_with_combining_marks_round_trip(client, raw, word):
    """A word keeps its marks from creation to reading, in the path too."""
    response = post_word(client, raw, 2)
    assert response.status_code == 201, response.text
    assert response.json() == {"word": word, "count": 2}
    assert client.get(response.headers["Location"]).json() == {
        "word": word, "count": 2}
    assert client.get("/words/" + raw).json() == {"word": word, "count": 2}


def test_texts_count_words_with_combining_marks_whole(client):
    """Vowel signs and viramas do not split Devanagari words."""
    response = client.post("/texts", data="नमस्ते दुनिया, नमस्ते!".encode(),
                           headers={"Content-Type": "text/plain"})
    assert response.json() == {
        "counted": {"\u0928\u092e\u0938\u094d\u0924\u0947": 2,
                    "\u0926\u0941\u0928\u093f\u092f\u093e": 1},
        "words": 3}


def test_prefix_may_end_inside_a_word_with_marks(client):
    """A prefix ending on a mark lists the words that start with it."""
    for word in ("नमस्ते", "नमक", "İstanbul", "istanbul"):
        assert post_word(client, word).status_code == 201
    listed = client.get("/words", params={"prefix": "नमस्"}).json()
    assert [item["word"] for item in listed["words"]] == [
        "\u0928\u092e\u0938\u094d\u0924\u0947"]
    dotted = client.get("/words", params={"prefix": "İ"}).json()
    assert [item["word"] for item in dotted["words"]] == ["i\u0307stanbul"]
