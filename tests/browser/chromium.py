"""Start Debian's Chromium under Playwright, with no browser download.

Playwright drives the system browser (``/usr/bin/chromium``) over the
DevTools protocol; ``playwright install`` is never needed. Each start
gets a fresh profile folder, and the flags turn off everything that
would reach the network on its own (updates, sync, safe browsing).
"""

import shutil

BROWSER = "/usr/bin/chromium"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run")
# Record every Content-Security-Policy violation where a test can read
# it. Installed through DevTools, so the policy itself does not apply.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def browser_path():
    """Return the Chromium to drive, or None when it is not installed."""
    return shutil.which(BROWSER) and BROWSER


def launch(playwright, profile, viewport=(1200, 900)):
    """Return a browser context on a new profile folder ``profile``."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=BROWSER, headless=True,
        args=list(FLAGS), viewport={"width": viewport[0],
                                    "height": viewport[1]})
    context.add_init_script(WATCH_VIOLATIONS)
    return context
