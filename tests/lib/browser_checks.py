"""Headless Chromium for the scenarios' UI tests: Debian's chromium package driven by Playwright."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from dagster_checks import PROJECT
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach
# Google's hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("DAGSTEROPS_SCREENSHOTS", PROJECT / ".molecule-logs/ui"))


@contextlib.contextmanager
def chromium():
    """The browser, closed on leaving; a clear failure when the package is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name, min_bytes=10_000):
    """Save the page as SCREENSHOTS/NAME.png; a nearly empty image fails."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > min_bytes, f"{path} is nearly empty"
    return path
