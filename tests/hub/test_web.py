"""The plain operator page in headless Chromium: lists devices with state and latest values."""

from __future__ import annotations

import pytest

from tests.hub.conftest import HubFactory
from tests.hub.device import FakeDevice
from tests.servers import MosquittoServer, require_binary, wait_until

pytestmark = pytest.mark.integration


def test_operator_page_lists_devices(mosquitto: MosquittoServer, make_hub: HubFactory) -> None:
    chromium = require_binary("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    hub = make_hub()
    dev = FakeDevice(mosquitto.port, "kiosk-web")
    dev.connect()
    dev.telemetry(1, paper_pct=33.0)
    registry = hub.registry
    assert registry is not None
    wait_until(lambda: (registry.get_public("kiosk-web") or {}).get("latest") == {"paper_pct": 33.0})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{hub.http_port}/")
            row = page.locator('tr[data-device="kiosk-web"]')
            row.locator("td.latest", has_text="paper_pct=33").wait_for(timeout=10_000)  # refreshes every 3 s
            cells = row.locator("td").all_inner_texts()
            assert cells[:5] == ["kiosk-web", "kiosk", "site-a", "110101001001001", "online"]
            assert "1 devices" in page.locator("#summary").inner_text()
        finally:
            browser.close()
