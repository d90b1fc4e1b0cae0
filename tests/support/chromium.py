"""Headless Chromium for the Playwright browser tests.

The suite drives the Debian ``chromium`` package (``/usr/bin/chromium``,
installed by ``scripts/test``) rather than a browser downloaded by
``playwright install``::

    from tests.support.chromium import CHROMIUM_ARGS, chromium_path, screenshot_dir

    browser = await playwright.chromium.launch(
        executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
    )
    await page.screenshot(path=screenshot_dir() / "front-page.png")

``--no-sandbox`` is required because the tests run as root on CI machines.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

DEBIAN_CHROMIUM = "/usr/bin/chromium"

CHROMIUM_ARGS: list[str] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where browser tests write screenshots; CI publishes this directory.
SCREENSHOT_DIR = REPO_ROOT / "artifacts" / "screenshots"


def chromium_path() -> str | None:
    """The Debian Chromium executable, or None when it is not installed."""
    if os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    return shutil.which("chromium")


def chromium_args() -> list[str]:
    """A fresh copy of the launch arguments (safe to extend)."""
    return list(CHROMIUM_ARGS)


def screenshot_dir() -> Path:
    """``artifacts/screenshots/`` at the repository root, created if needed."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR
