"""A real headless Chromium (Debian's `chromium`, driven by Playwright) against pytest-django's
`live_server`.

The browser is the system one (`/usr/bin/chromium`, installed by `scripts/services.sh up`):
Playwright never downloads one. Screenshots go to var/test-artifacts/screenshots/ (emptied at
the start of each run) and their paths are listed at the end of the pytest report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from whitepapers.tests.conftest import (  # noqa: F401 - the whitepaper workflow's fixtures
    s3_artifacts,
    s3_client,
    workflow,
)

CHROMIUM = Path(os.environ.get("TORGHUT_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "var" / "test-artifacts" / "screenshots"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
_saved: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives the admin in a real headless Chromium (tests/browser)"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _saved:
        terminalreporter.section("browser screenshots")
        for path in _saved:
            terminalreporter.write_line(str(path))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One browser per module. Playwright's sync API keeps an event loop running on this
    thread, so Django's ORM is allowed from it only while the browser lives."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `scripts/services.sh up` (or `make test`) installs it")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
            )
            try:
                yield browser
            finally:
                browser.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


@pytest.fixture
def page(chromium: Any, screenshot_dir: Path) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot under var/test-artifacts/screenshots/, listed in the report."""
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    _saved.append(path)
    print(f"screenshot: {path}")
    return path
