"""Take README's screenshot of the page: python -m tests.browser.screenshot.

A server with a scratch database, Chromium, a classified photo and a
few counted words; the picture is saved as a small palette PNG.
"""

import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect, sync_playwright

from tests.browser.chromium import launch
from tests.conftest import DATA, RunningServer, make_settings

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "images" / "page.png"
COLOURS = 64


def take(path=OUTPUT):
    """Save a screenshot of the page in use to ``path``."""
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as pw:
        scratch = Path(scratch)
        with RunningServer(make_settings(scratch)) as running:
            context = launch(pw, scratch / "profile", viewport=(1100, 700))
            try:
                page = context.pages[0]
                page.goto(running.url + "/", wait_until="networkidle")
                page.fill("#text-input", "The cat sat on the mat; the cat "
                          "is an Egyptian Mau.")
                page.click("#count-text")
                expect(page.locator("#word-rows tr")).to_have_count(9)
                page.set_input_files("#image-file",
                                     str(DATA / "chelsea.jpg"))
                expect(page.locator("#predictions li")).to_have_count(5)
                page.screenshot(path=str(scratch / "page.png"),
                                full_page=True)
            finally:
                context.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(scratch / "page.png") as shot:
            shot.convert("RGB").quantize(COLOURS).save(path, optimize=True)
    return path


if __name__ == "__main__":
    print(take(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
