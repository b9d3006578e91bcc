"""Debian's headless Chromium driven by Playwright for tests: the browser is /usr/bin/chromium
(never a Playwright download), started with a fresh profile and no background networking."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

CHROMIUM = Path("/usr/bin/chromium")

#: As the machine notes say: without the background-networking flags Chromium keeps trying to
#: reach Google's hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_or_fail(path: Path = CHROMIUM) -> Path:
    """`path` when Chromium is installed there; otherwise the test fails saying how to install it
    (a browser test that skips itself would hide that the report was never opened)."""
    if not path.is_file():
        pytest.fail(
            f"Chromium is not installed ({path} is missing): the HTML report's browser test needs "
            "Debian's package. Install it with `apt-get install -y chromium` (as root; .ci/run "
            "does this when it is missing), then run the test again.", pytrace=False)
    return path


@contextmanager
def chromium(profile: Path) -> Iterator[BrowserContext]:
    """A headless Chromium context with the fresh profile directory `profile`."""
    executable = chromium_or_fail()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extras install it
        pytest.fail("Playwright for Python is missing: run `pip install -e '.[test]'`",
                    pytrace=False)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(executable), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, offline=True)
        try:
            yield context
        finally:
            context.close()
