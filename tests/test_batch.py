"""The batch CLI run as a user runs it: real images, real model, real URLs.

Every run is ``python -m app.batch`` in a child process. URLs point only
at a loopback canary server, which the settings let through with
``APP_FETCH_ALLOW_PRIVATE=true`` where a test needs it.
"""

import csv
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest
from PIL import Image

from app.batch.sources import Input, SourceError, expand
from app.settings import PROJECT_ROOT
from tests.canary import Canary, send_body

DATA = PROJECT_ROOT / "tests" / "data"
CHELSEA = (DATA / "chelsea.jpg").read_bytes()
RUN_TIMEOUT = 180
EGYPTIAN_MAU = 285
# The service's default: the highest version in the repository.
DEFAULT_VERSION = max(int(path.parent.name) for path in
                      (PROJECT_ROOT / "model").glob("*/model.json"))


def run_batch(*args, allow_private=False, timeout=RUN_TIMEOUT):
    """Run the CLI from the project root; return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "app.batch", *map(str, args)],
        cwd=PROJECT_ROOT, env=batch_env(allow_private),
        capture_output=True, text=True, timeout=timeout)


def batch_env(allow_private=False):
    """Return the environment without APP_ variables, plus loopback URLs."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("APP_")}
    if allow_private:
        env["APP_FETCH_ALLOW_PRIVATE"] = "true"
    return env


def read_csv(path):
    """Return the rows of a CSV results file as dicts."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path):
    """Return the rows of a JSON-lines results file."""
    return [json.loads(line) for line in
            path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def canary():
    """Yield a loopback server with a photo at /chelsea.jpg, else 404."""
    server = Canary("127.0.0.1")
    server.routes["/chelsea.jpg"] = send_body(
        CHELSEA, headers=[("Content-Type", "image/jpeg")])
    yield server
    server.close()


@pytest.fixture
def photos(tmp_path):
    """Return a folder of real photos, one in a sub-folder, one corrupt."""
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    (folder / "a_chelsea.jpg").write_bytes(CHELSEA)
    (folder / "b_corrupt.jpg").write_bytes(CHELSEA[:300] + b"not a photo")
    (folder / "c_astronaut.png").write_bytes(
        (DATA / "astronaut.png").read_bytes())
    (folder / "more" / "d_astronaut.jpg").write_bytes(
        (DATA / "astronaut.jpg").read_bytes())
    (folder / "notes.md").write_text("not an image: skipped in a folder")
    return folder


def url_list(tmp_path, canary, *paths):
    """Write a text file of canary URLs, one per line, and return it."""
    listing = tmp_path / "urls.txt"
    listing.write_text("# photos on the canary\n" + "".join(
        f"http://127.0.0.1:{canary.port}{path}\n" for path in paths))
    return listing


def test_rows_come_in_input_order_with_error_codes_and_exit_1(
        tmp_path, photos, canary):
    """Folder (sorted, recursive), then URLs; bad inputs get their code."""
    urls = url_list(tmp_path, canary, "/missing.jpg", "/chelsea.jpg")
    output = tmp_path / "results.csv"
    done = run_batch(photos, urls, "--output", output, "--workers", "2",
                     allow_private=True)
    assert done.returncode == 1, done.stderr
    rows = read_csv(output)
    base = f"http://127.0.0.1:{canary.port}"
    assert [row["source"] for row in rows] == [
        str(photos / "a_chelsea.jpg"), str(photos / "b_corrupt.jpg"),
        str(photos / "c_astronaut.png"),
        str(photos / "more" / "d_astronaut.jpg"),
        f"{base}/missing.jpg", f"{base}/chelsea.jpg"]
    assert [row["error"] for row in rows] == [
        "", "invalid_image", "", "", "url_fetch_failed", ""]
    for row in (rows[0], rows[5]):
        assert (row["label_1"], row["index_1"]) == ("Egyptian Mau",
                                                    str(EGYPTIAN_MAU))
        assert row["model_version"] == str(DEFAULT_VERSION)
        assert 0.5 < float(row["score_1"]) <= 1.0
    assert "404" in rows[4]["message"]
    assert ("/missing.jpg", f"127.0.0.1:{canary.port}") in canary.requests
    assert "4 ok, 2 failed" in done.stdout
    assert "invalid_image: 1" in done.stdout
    assert "url_fetch_failed: 1" in done.stdout


def test_a_loopback_url_is_refused_without_allow_private(tmp_path, canary):
    """The service's SSRF rules hold: the canary sees no connection."""
    output = tmp_path / "results.jsonl"
    done = run_batch(f"http://127.0.0.1:{canary.port}/chelsea.jpg",
                     "--output", output)
    assert done.returncode == 1, done.stderr
    (row,) = read_jsonl(output)
    assert row["error"]["code"] == "url_not_allowed"
    assert canary.connections == 0


def test_jsonl_rows_have_the_services_shape_and_exit_0(tmp_path):
    """All scored: exit 0; each row a JSON object with model and classes."""
    output = tmp_path / "results.jsonl"
    done = run_batch(DATA / "chelsea.jpg", DATA / "astronaut.jpg",
                     "--output", output, "--top-k", "3",
                     "--model-version", "1")
    assert done.returncode == 0, done.stderr
    rows = read_jsonl(output)
    assert [row["source"] for row in rows] == [
        str(DATA / "chelsea.jpg"), str(DATA / "astronaut.jpg")]
    assert all(row["model_version"] == 1 for row in rows)
    assert all(len(row["classes"]) == 3 for row in rows)
    best = rows[0]["classes"][0]
    assert (best["label"], best["index"]) == ("Egyptian Mau", EGYPTIAN_MAU)
    scores = [item["score"] for item in rows[0]["classes"]]
    assert scores == sorted(scores, reverse=True)
    assert "2 ok, 0 failed" in done.stdout


def test_csv_has_every_column_on_every_row(tmp_path, photos):
    """Error rows are padded: a strict CSV reader sees equal rows."""
    output = tmp_path / "results.csv"
    run_batch(photos, "--output", output, "--top-k", "2")
    with open(output, newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))
    assert records[0] == ["source", "model_version", "error", "message",
                          "label_1", "index_1", "score_1",
                          "label_2", "index_2", "score_2"]
    assert {len(record) for record in records} == {10}
    assert len(records) == 1 + 4


def test_a_glob_and_a_csv_url_column_are_sources(tmp_path, photos, canary):
    """A quoted glob expands here; a CSV list is read by its url column."""
    table = tmp_path / "urls.csv"
    table.write_text("id,url\n7,http://127.0.0.1:%d/chelsea.jpg\n"
                     % canary.port)
    output = tmp_path / "results.csv"
    done = run_batch(f"{photos}/*.jpg", table, "--output", output,
                     allow_private=True)
    rows = read_csv(output)
    assert [row["source"] for row in rows] == [
        str(photos / "a_chelsea.jpg"), str(photos / "b_corrupt.jpg"),
        f"http://127.0.0.1:{canary.port}/chelsea.jpg"]
    assert rows[2]["label_1"] == "Egyptian Mau"
    assert done.returncode == 1


@pytest.mark.parametrize("args, message", [
    (["{missing}", "--output", "{out}.csv"], "no such file or folder"),
    (["{photo}", "--output", "{out}.txt"], "must end in .csv or .jsonl"),
    (["{photo}", "--output", "{out}.csv", "--top-k", "0"], "--top-k"),
    (["{photo}", "--output", "{out}.csv", "--top-k", "1001"], "at most 1000"),
    (["{photo}", "--output", "{out}.csv", "--model-version", "9"],
     "does not exist"),
    (["{photo}", "--output", "{out}.csv", "--resume", "--overwrite"],
     "exclude each other"),
    (["{photo}"], "--output"),
    (["{photo}", "--output", "{exists}"], "pass --resume"),
], ids=["missing-source", "bad-extension", "top-k-zero", "top-k-too-big",
        "unknown-version", "resume-and-overwrite", "no-output",
        "output-exists"])
def test_usage_errors_exit_2(tmp_path, args, message):
    """A command line that cannot run exits 2 and says why; no rows."""
    exists = tmp_path / "old.csv"
    exists.write_text("kept\n")
    values = {"missing": tmp_path / "nowhere", "out": tmp_path / "out",
              "photo": DATA / "chelsea.jpg", "exists": exists}
    done = run_batch(*(arg.format(**values) for arg in args))
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert exists.read_text() == "kept\n"
    assert not (tmp_path / "out.csv").exists()


def small_photos(folder, count):
    """Write ``count`` distinct small JPEGs made from the test photo."""
    folder.mkdir()
    with Image.open(DATA / "chelsea.jpg") as photo:
        photo = photo.convert("RGB")
        for number in range(count):
            crop = photo.crop((number, 0, number + 280, 280)).resize(
                (96, 96))
            crop.save(folder / f"{number:03d}.jpg", quality=85)


def test_resume_after_a_kill_scores_every_input_exactly_once(tmp_path):
    """Kill a run mid-way, tear its last line, resume: each input once."""
    folder = tmp_path / "small"
    small_photos(folder, 100)
    output = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "app.batch", str(folder), "--output",
               str(output), "--workers", "1", "--progress", "lines"]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=batch_env(),
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if output.exists() and output.read_bytes().count(b"\n") >= 10:
                break
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(RUN_TIMEOUT)
    written = read_jsonl(output)
    assert 10 <= len(written) < 100, "the kill did not land mid-way"
    # What a kill in the middle of a write leaves: a line with no end.
    with open(output, "a", encoding="utf-8") as handle:
        handle.write('{"source": "' + str(folder / "torn"))

    done = run_batch(folder, "--output", output, "--resume")
    assert done.returncode == 0, done.stderr
    rows = read_jsonl(output)
    expected = [str(folder / f"{number:03d}.jpg") for number in range(100)]
    assert [row["source"] for row in rows] == expected
    assert rows[:len(written)] == written
    assert f"skipped {len(written)} inputs" in done.stdout
    assert all(row["classes"] for row in rows)


def test_resume_of_a_finished_run_scores_nothing_and_keeps_its_status(
        tmp_path, photos):
    """Nothing left: no new rows, and exit 1 for the earlier failure."""
    output = tmp_path / "results.csv"
    first = run_batch(photos, "--output", output)
    before = output.read_text()
    again = run_batch(photos, "--output", output, "--resume")
    assert first.returncode == again.returncode == 1
    assert output.read_text() == before
    assert "scored 0 inputs" in again.stdout
    assert "skipped 4 inputs" in again.stdout


def test_resume_refuses_a_csv_with_other_columns(tmp_path, photos):
    """Another --top-k would mix row shapes: a usage error instead."""
    output = tmp_path / "results.csv"
    run_batch(photos, "--output", output, "--top-k", "2")
    done = run_batch(photos, "--output", output, "--resume")
    assert done.returncode == 2
    assert "--top-k" in done.stderr


def test_progress_lines_off_a_terminal(tmp_path):
    """Without a terminal, progress is plain lines with rate and ETA."""
    done = run_batch(DATA / "chelsea.jpg", "--output",
                     tmp_path / "r.csv")
    lines = [line for line in done.stderr.splitlines()
             if line.startswith("progress:")]
    assert lines and "1/1 (100.0%)" in lines[-1]
    assert "images/s" in lines[-1] and "ETA" in lines[-1]
    assert "\r" not in done.stderr


def test_progress_bar_on_a_terminal_shows_rate_and_eta(tmp_path):
    """On a terminal (a pseudo-terminal here) auto picks the tqdm bar."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ,
                struct.pack("HHHH", 24, 100, 0, 0))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.batch", str(DATA / "chelsea.jpg"),
             str(DATA / "astronaut.jpg"), "--output", str(tmp_path / "r.csv")],
            cwd=PROJECT_ROOT, env=batch_env(), stdout=subprocess.DEVNULL,
            stderr=terminal)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(RUN_TIMEOUT) == 0
    finally:
        os.close(controller)
    text = shown.decode("utf-8", "replace")
    assert "\r" in text and "2/2" in text and "img/s" in text
    assert "<00:00" in text  # the ETA column
    assert "progress:" not in text


def test_sources_expand_in_order_and_skip_list_comments(tmp_path):
    """Unit check of the expansion rules the CLI relies on."""
    listing = tmp_path / "list.txt"
    listing.write_text("\n# a comment\nhttps://example.com/a,b.jpg\n\n")
    photo = tmp_path / "x.JPG"
    photo.write_bytes(CHELSEA)
    assert expand([str(photo), str(listing), "http://example.com/c"]) == [
        Input(str(photo), False), Input("https://example.com/a,b.jpg", True),
        Input("http://example.com/c", True)]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    with pytest.raises(SourceError, match="no image"):
        expand([str(empty)])
    with pytest.raises(SourceError, match="matches"):
        expand([str(tmp_path / "*.png")])


def test_a_huge_file_is_refused_after_reading_only_the_limit(tmp_path):
    """A file over max_image_bytes gets image_too_large, not an OOM."""
    big = tmp_path / "big.jpg"
    with open(big, "wb") as handle:
        handle.write(CHELSEA)
        handle.truncate(64 * 1024 * 1024)
    output = tmp_path / "r.jsonl"
    done = run_batch(big, "--output", output)
    assert done.returncode == 1
    assert read_jsonl(output)[0]["error"]["code"] == "image_too_large"


def test_summary_counts_match_the_rows(tmp_path, photos):
    """The printed totals agree with the file."""
    output = tmp_path / "results.csv"
    done = run_batch(photos, "--output", output)
    rows = read_csv(output)
    failed = sum(1 for row in rows if row["error"])
    assert failed == 1
    assert f"{len(rows)} rows in {output}, {failed} with an error" in (
        done.stdout)
