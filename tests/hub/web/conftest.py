"""Chromium for the page tests: Debian's binary driven by Playwright, one per test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import require_binary


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_binary("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield b
        b.close()
