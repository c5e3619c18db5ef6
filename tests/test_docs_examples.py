"""Every curl example in README.md and docs/ runs against a live server.

Examples are the ``curl`` commands of the ``sh``, ``bash`` and ``shell``
code blocks, lines ending in a backslash joined as the shell joins them.
Those that call the example server (``http://127.0.0.1:8080`` or
``localhost:8080``) run, in document order, against one live server per
document, with its URL put in their place; the others call a remote host
(an EC2 instance) and are only read. An example answers 2xx or 3xx unless
a comment on the line before it gives the status it shows, ``# -> 404``.
"""

import dataclasses
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RunningServer, make_settings

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell"})
FENCE = re.compile(r"(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>\S*)")
EXAMPLE_SERVER = re.compile(r"(?:http://)?(?:127\.0\.0\.1|localhost):8080")
EXPECTED_STATUS = re.compile(r"#\s*->\s*(?P<status>[1-5]\d\d)\b")
# Anything that looks local in a command that does not call the example
# server is more likely a typo than a remote host.
LOCAL_HINTS = ("127.0.0.1", "localhost", "[::1]", ":8080", "0.0.0.0")
STATUS_MARK = "example-http-status="
CURL_TIMEOUT = 60


@dataclasses.dataclass(frozen=True)
class Example:
    """One curl command of a document, where it is and what it expects."""

    document: Path
    line: int
    command: str
    expected_status: int | None

    @property
    def local(self):
        """Tell whether the command calls the example server."""
        return EXAMPLE_SERVER.search(self.command) is not None

    def __str__(self):
        """Name the example by file and line."""
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def shell_blocks(text):
    """Yield ``(line number, lines)`` of each shell block, fences excluded.

    A fence may be indented (a block inside a list item); that indent is
    removed from the block's lines.
    """
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.fullmatch(lines[index].rstrip())
        index += 1
        if opening is None:
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        start = index
        while index < len(lines) and not _closes(lines[index], fence):
            index += 1
        if opening["info"].lower() in SHELL_LANGUAGES:
            yield start + 1, [_dedent(line, indent)
                              for line in lines[start:index]]
        index += 1


def logical_lines(first_number, lines):
    """Yield ``(line number, text)``, backslash-continued lines joined."""
    number = first_number
    while lines:
        start, text = number, lines.pop(0)
        number += 1
        while text.endswith("\\") and lines:
            text = text[:-1] + lines.pop(0)
            number += 1
        yield start, text


def collect(document):
    """Return the curl examples of one Markdown document, in order."""
    examples = []
    for first_number, lines in shell_blocks(document.read_text("utf-8")):
        previous = ""
        for number, text in logical_lines(first_number, lines):
            stripped = text.strip()
            if stripped.startswith("curl "):
                expected = EXPECTED_STATUS.match(previous)
                examples.append(Example(
                    document, number, stripped,
                    int(expected["status"]) if expected else None))
            previous = stripped
    return examples


def run(example, base_url):
    """Run one example against base_url; return exit code, status, output.

    The status comes from curl's ``-w``, written to stderr so that the
    command's own output (and any pipe) is left as it is.
    """
    command = EXAMPLE_SERVER.sub(base_url, example.command)
    command = re.sub(
        r"^curl\b",
        f"curl -sS --max-time {CURL_TIMEOUT} "
        f"-w '%{{stderr}}\\n{STATUS_MARK}%{{http_code}}\\n'",
        command, count=1)
    # No proxy: an example talks to the loopback server and nothing else.
    env = {key: value for key, value in os.environ.items()
           if not key.lower().endswith("_proxy")}
    env["no_proxy"] = env["NO_PROXY"] = "*"
    result = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
        stdin=subprocess.DEVNULL, timeout=CURL_TIMEOUT + 10)
    stdout = result.stdout.decode("utf-8", "replace")
    stderr = result.stderr.decode("utf-8", "replace")
    statuses = re.findall(re.escape(STATUS_MARK) + r"(\d{3})", stderr)
    status = int(statuses[-1]) if statuses else None
    return result.returncode, status, stdout + stderr


def _closes(line, fence):
    """Tell whether line is the closing fence of a block opened by fence."""
    stripped = line.strip()
    return (stripped.startswith(fence)
            and stripped == fence[0] * len(stripped))


def _dedent(line, indent):
    """Remove up to indent leading spaces from a line."""
    return line[min(indent, len(line) - len(line.lstrip(" "))):]


ALL_EXAMPLES = {document: collect(document) for document in DOCUMENTS}
RUNNABLE = {document: [example for example in examples if example.local]
            for document, examples in ALL_EXAMPLES.items()}


def test_the_collector_reads_blocks_continuations_and_statuses(tmp_path):
    """Shell blocks, indented ones too, are read; other blocks are not."""
    document = tmp_path / "sample.md"
    document.write_text(
        "Text with curl localhost:8080/not-code.\n"
        "```json\n{\"curl\": \"localhost:8080\"}\n```\n"
        "```sh\n"
        "curl -X POST http://127.0.0.1:8080/words \\\n"
        "     -d '{\"word\": \"a\"}'\n"
        "# -> 404\n"
        "curl localhost:8080/words/ghost\n"
        "echo curl localhost:8080/not-a-command\n"
        "```\n"
        "1. A step:\n\n"
        "   ```bash\n"
        "   curl http://$IP/health/ready\n"
        "   ```\n", "utf-8")
    examples = collect(document)
    assert [(example.line, example.command, example.expected_status,
             example.local) for example in examples] == [
        (6, "curl -X POST http://127.0.0.1:8080/words "
            "     -d '{\"word\": \"a\"}'", None, True),
        (9, "curl localhost:8080/words/ghost", 404, True),
        (15, "curl http://$IP/health/ready", None, False)]


def test_the_documents_hold_enough_examples():
    """The docs hold runnable examples, so the tests below cannot pass idly.

    README.md shows a word, a prediction and a KServe V2 inference.
    """
    runnable = [example for examples in RUNNABLE.values()
                for example in examples]
    assert len(runnable) >= 5, runnable
    readme = " ".join(example.command
                      for example in RUNNABLE[ROOT / "README.md"])
    for route in ("/words", "/predict/model", "/v2/models/"):
        assert route in readme, route


def test_every_example_is_runnable_or_clearly_remote():
    """No example hides a typo in its address or its own -w option."""
    for examples in ALL_EXAMPLES.values():
        for example in examples:
            if not example.local:
                assert not any(hint in example.command
                               for hint in LOCAL_HINTS), str(example)
            assert not re.search(r"\s(-w|--write-out)\b", example.command), (
                f"{example}: the test adds its own -w")


def test_the_api_reference_lists_every_error_code():
    """Every error code written in app/ is documented in docs/api.md."""
    code = re.compile(r"\bcode\s*=\s*\"([a-z_]+)\"")
    codes = {name for path in (ROOT / "app").rglob("*.py")
             for name in code.findall(path.read_text("utf-8"))}
    reference = (ROOT / "docs" / "api.md").read_text("utf-8")
    assert {"store_contention", "invalid_content_length"} <= codes
    assert sorted(name for name in codes
                  if f"`{name}`" not in reference) == []


@pytest.mark.parametrize(
    "document", [document for document in DOCUMENTS if RUNNABLE[document]],
    ids=lambda document: str(document.relative_to(ROOT)))
def test_curl_examples_work_against_a_live_server(document, tmp_path):
    """Each curl example of the document succeeds, in document order."""
    with RunningServer(make_settings(tmp_path)) as server:
        for example in RUNNABLE[document]:
            code, status, output = run(example, server.url)
            shown = f"{example}: {example.command}\n{output[-2000:]}"
            assert code == 0, f"curl exited with {code}; {shown}"
            if example.expected_status is not None:
                assert status == example.expected_status, shown
            else:
                assert status is not None and 200 <= status < 400, shown
