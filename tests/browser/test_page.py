"""The root page in a real headless Chromium against a real server.

Every browser test ends by checking that the page logged no console
error and broke no rule of its Content-Security-Policy; a first test
proves that such a violation would be caught.
"""

import dataclasses
import re

import pytest
from playwright.sync_api import expect, sync_playwright

from app.ops.keys import hash_key
from app.web.docs import CONTENT_SECURITY_POLICY
from tests.browser.chromium import browser_path, launch
from tests.conftest import DATA, Client, RunningServer, make_settings

WAIT_MS = 20000
EGYPTIAN_MAU = "Egyptian Mau"

pytestmark = pytest.mark.skipif(
    browser_path() is None, reason="needs Debian's chromium: "
    "make test-browser installs it")


@dataclasses.dataclass
class Visit:
    """A page of the browser and what it logged."""

    page: object
    errors: list

    def violations(self):
        """Return the policy violations the page has seen."""
        return self.page.evaluate("window.__violations")

    def assert_clean(self):
        """Fail on any console error or policy violation."""
        assert self.errors == []
        assert self.violations() == []


@pytest.fixture(scope="module")
def playwright():
    """Yield Playwright for the module's tests."""
    with sync_playwright() as running:
        yield running


@pytest.fixture
def browser(playwright, tmp_path):
    """Yield a Chromium context on a fresh profile."""
    context = launch(playwright, tmp_path / "profile")
    yield context
    context.close()


def open_page(browser, url):
    """Open the root page of ``url``; record console errors."""
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.set_default_timeout(WAIT_MS)
    errors = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Ready once the script's first calls (/models, /words) answered.
    page.goto(url + "/", wait_until="networkidle")
    return Visit(page, errors)


@pytest.fixture
def visit(browser, server):
    """Yield the root page of the test's server, loaded."""
    yield open_page(browser, server.url)


def test_page_is_served_under_the_strict_policy_with_no_inline_code(client):
    """/ and its files carry the CSP of /docs; nothing inline, all local."""
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == (
        CONTENT_SECURITY_POLICY)
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert "<style" not in page.text and " style=" not in page.text
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/docs" in references
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//")
    assets = [ref for ref in references if ref.startswith("/page/")]
    assert len(assets) == 3
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        assert answer.headers["Content-Security-Policy"] == (
            CONTENT_SECURITY_POLICY)
    missing = client.get("/page/secrets.txt")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert client.get("/page/..%2Fpage.py").status_code == 404


def test_the_violation_watch_catches_an_inline_script(visit):
    """An inline script is refused by the policy and recorded."""
    visit.page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.inlineRan = true";
        document.body.append(script);
    }""")
    visit.page.wait_for_function("window.__violations.length > 0")
    assert visit.page.evaluate("window.inlineRan") is None
    assert any("script-src" in item for item in visit.violations())


def test_uploading_chelsea_shows_egyptian_mau_first(visit):
    """Pick tests/data/chelsea.jpg: five bars, Egyptian Mau on top."""
    page = visit.page
    page.set_input_files("#image-file", str(DATA / "chelsea.jpg"))
    rows = page.locator("#predictions li")
    expect(rows).to_have_count(5)
    expect(rows.first.locator(".label")).to_have_text(EGYPTIAN_MAU)
    expect(page.locator("#classify-status")).to_have_text(
        re.compile(r"v\d+, answered in \d+ ms"))
    width = rows.first.locator(".bar").evaluate(
        "bar => bar.getBoundingClientRect().width / "
        "bar.parentElement.getBoundingClientRect().width")
    score = float(rows.first.locator(".score").inner_text().split()[0])
    assert abs(width * 100 - score) < 1.0
    expect(page.locator("#preview")).to_be_visible()
    visit.assert_clean()


def test_the_version_picked_is_the_version_that_answers(visit, client):
    """Each listed version can be picked, and the answer says which."""
    page = visit.page
    values = page.locator("#model-version option").evaluate_all(
        "options => options.map(option => option.value)")
    versions = [str(item["version"])
                for item in client.get("/models").json()["versions"]]
    assert values == ["", *versions] and len(versions) >= 2
    page.set_input_files("#image-file", str(DATA / "chelsea.jpg"))
    for version in versions:
        page.select_option("#model-version", version)
        page.click("#classify-button")
        expect(page.locator("#classify-status")).to_contain_text(
            f" v{version}, answered")
        expect(page.locator("#predictions li .label").first).to_have_text(
            EGYPTIAN_MAU)
    visit.assert_clean()


def test_a_word_is_created_incremented_and_deleted(visit, client):
    """Add, +1 and Delete in the page change the store itself."""
    page = visit.page
    page.fill("#word-input", "Browser")
    page.fill("#word-count", "2")
    page.click("#add-word")
    row = page.locator("#word-rows tr[data-word='browser']")
    expect(row.locator(".count")).to_have_text("2")
    assert client.get("/words/browser").json()["count"] == 2
    page.get_by_role("button", name="Increment browser").click()
    expect(row.locator(".count")).to_have_text("3")
    assert client.get("/words/browser").json()["count"] == 3
    page.get_by_role("button", name="Delete browser").click()
    expect(row).to_have_count(0)
    expect(page.locator("#words-status")).to_have_text("Deleted “browser”")
    assert client.get("/words/browser").status_code == 404
    visit.assert_clean()


def test_a_pasted_text_is_counted_and_the_prefix_search_finds_it(
        visit, client):
    """Count a text, then list the words starting with a prefix."""
    page = visit.page
    page.fill("#text-input", "The cat and the hat. The end!")
    page.click("#count-text")
    expect(page.locator("#text-result")).to_contain_text("7 words counted")
    assert client.get("/words/the").json()["count"] == 3
    page.fill("#prefix", "th")
    page.press("#prefix", "Enter")
    words = page.locator("#word-rows tr")
    expect(words).to_have_count(1)
    expect(words.first.locator(".count")).to_have_text("3")
    expect(page.locator("#word-total")).to_have_text(
        "1 word starting with “th”")
    visit.assert_clean()


def test_errors_show_the_apis_own_messages(visit, client):
    """A refused word and a refused URL show the API's message and code."""
    page = visit.page
    page.fill("#word-input", "no!word")
    page.click("#add-word")
    refused = client.post("/words", json={"word": "no!word", "count": 1})
    error = refused.json()["error"]
    expect(page.locator("#words-status")).to_have_text(
        f"Error: {error['message']} ({error['code']})")
    # The server's own address: refused by the fetch rules, no traffic
    # leaves the machine.
    page.fill("#image-url", client.base_url + "/page/icon.svg")
    page.click("#classify-button")
    expect(page.locator("#classify-status")).to_contain_text(
        "(url_not_allowed)")
    # Answers of 4xx are the page's business, not console errors; Chrome
    # still logs each failed fetch, which is all these lines are.
    visit.errors[:] = [line for line in visit.errors
                       if "status of 400" not in line]
    visit.assert_clean()


def test_the_api_key_goes_as_bearer_and_stays_in_memory(browser, tmp_path):
    """With keys on, a typed key opens the API; it is kept in memory only."""
    key = "page-test-key-0123456789"
    keys = tmp_path / "keys"
    keys.write_text(f"page {hash_key(key)} words:read,words:write,predict\n")
    settings = make_settings(tmp_path, api_keys_file=keys)
    with RunningServer(settings) as running:
        visit = open_page(browser, running.url)
        page = visit.page
        expect(page.locator("#words-status")).to_contain_text(
            "(unauthorized)")
        expect(page.locator("#model-version option")).to_have_count(1)
        page.fill("#api-key", key)
        page.fill("#word-input", "keyed")
        # Leaving the key field reads the versions again, with the key.
        expect(page.locator("#model-version option")).not_to_have_count(1)
        page.click("#add-word")
        expect(page.locator("#word-rows tr[data-word='keyed']")).to_have_count(
            1)
        page.set_input_files("#image-file", str(DATA / "chelsea.jpg"))
        expect(page.locator("#predictions li .label").first).to_have_text(
            EGYPTIAN_MAU)
        with Client(running.url) as client:
            stored = client.get("/words/keyed",
                                headers={"Authorization": f"Bearer {key}"})
            assert stored.json()["count"] == 1
        kept = page.evaluate("""() => [localStorage.length,
            sessionStorage.length, document.cookie]""")
        assert kept == [0, 0, ""]
        assert key not in page.content()
        visit.errors[:] = [line for line in visit.errors
                           if "status of 401" not in line]
        visit.assert_clean()
