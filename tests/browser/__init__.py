"""Tests of the root page in a real headless Chromium (make test-browser)."""
