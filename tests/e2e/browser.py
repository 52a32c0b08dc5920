"""Headless Chromium for the console's tests: Debian's ``chromium`` driven by Playwright for Python
(``executable_path``; Playwright's own browser downloads are never used), kept off the network."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: Flags that keep the browser off the network; a fake camera for getUserMedia.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_ENV = "SKULENS_CHROMIUM"


def find_chromium() -> str | None:
    """``$SKULENS_CHROMIUM``, else the first Chromium on PATH (Debian: /usr/bin/chromium)."""
    given = os.environ.get(BROWSER_ENV)
    if given:
        return given if Path(given).is_file() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def why_no_browser() -> str | None:
    """None when a browser can be driven here, else why not (the reason tests are skipped)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    if find_chromium() is None:
        return (
            f"no Chromium found (looked for ${BROWSER_ENV} and {', '.join(CANDIDATES)} on PATH); "
            "install it with: apt-get install -y chromium"
        )
    return None


def launch(playwright):
    return playwright.chromium.launch(executable_path=find_chromium(), args=FLAGS, headless=True)


def off_network(page, base_url: str) -> list[str]:
    """Refuse every request that is not to ``base_url`` (or a data/blob URL); answers the list of them."""
    refused: list[str] = []

    def handle(route):
        url = route.request.url
        if url.startswith((base_url, "data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", handle)
    return refused
