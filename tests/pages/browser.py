"""Headless Chromium through Selenium, for tests that look at the catalog and the report.

Tests using the ``browser`` fixture are left out where the browser is missing, with the command
that installs it, and fail under ``CI=true`` (``tests/requirements.py``): these tests are how the pages are known to render, so
CI must run them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.requirements import require_browser

SCREENSHOT_COPIES = Path("/tmp/flowwarden-screenshots")
# Without the background-networking flags Chromium tries to reach Google's services, which a
# closed network refuses; none of the pages needs the network.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900", "--hide-scrollbars",
)


@contextmanager
def chromium(profile_dir: Path) -> Iterator[Any]:
    """A headless Chromium driven by chromedriver, with a fresh empty profile."""
    binary, driver_path = require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    profile_dir.mkdir(parents=True, exist_ok=True)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """Severe console messages since the last call (script errors, blocked loads, CSP)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def screenshot(driver: Any, directory: Path, name: str) -> Path:
    """Save a full-page PNG under `directory` and a copy under /tmp/flowwarden-screenshots/."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height) + 40, 600), 8000))
    path = directory / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    return keep(path)


def keep(path: Path) -> Path:
    """Copy a screenshot to /tmp/flowwarden-screenshots/ and print both paths."""
    SCREENSHOT_COPIES.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOT_COPIES / path.name)
    print(f"screenshot: {path} (copy: {SCREENSHOT_COPIES / path.name})")
    return path
