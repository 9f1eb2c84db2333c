"""Headless Chromium for the browser tests: Debian's own binary, driven by Playwright for Python.

deploy/local/test.sh installs it (deploy/local/chromium.sh); Playwright's own browser download does
not work on a closed network and is never used. Without Chromium or the playwright package the
browser tests are skipped locally and fail under CI=true: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = os.environ.get("THROUGHLINE_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google's hosts, which a closed
# network refuses; Playwright gives every launch a fresh, empty profile directory of its own.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable(reason: str, module_level: bool = False) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: browser tests may not skip)", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"no Chromium at {CHROMIUM}; deploy/local/chromium.sh installs it")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh context per test (no cookies or cache shared), desktop-sized."""
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        yield await context.new_page()
    finally:
        await context.close()
