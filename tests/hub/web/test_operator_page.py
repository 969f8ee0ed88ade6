"""The operator page in real headless Chromium (Debian's, driven by Playwright) against a real hub.

One hub with its embedded broker and a generated 3-grid community serves the page; tokens
sign in an operator, a grid worker and a supervisor. A smoke alarm published over MQTT
with the wire contract must reach the live feed within 2 s and colour its grid; a case is
walked from report and dispatch to verify and close by clicks only. Screenshots go to
``test-artifacts/operator-page/`` at the repo root (and, with ``GS_UPDATE_SCREENSHOTS=1``,
the overview to docs/img/ for the README).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.wire import Channel, DeviceKind, DeviceState, Event, EventState, Point, Severity, Status, Telemetry
from simulators.servers import wait_until
from tests.hub.web.conftest import Site, start_site
from tests.hub.web.pages import REPO, VIEWPORT, Tab, open_page, shoot

pytestmark = pytest.mark.integration

README_SHOT = REPO / "docs" / "img" / "operator-page.png"


def _now_ms() -> int:
    return int(time.time() * 1000)


class SensorBox:
    """Devices of the community speaking the wire contract over MQTT (paho, no agent)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="web-test-devices", protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.seq: dict[str, int] = {}

    def publish(self, device: str, channel: Channel, payload: bytes, retain: bool = False) -> None:
        self.client.publish(wire.topic("sunrise", device, channel), payload, qos=1, retain=retain).wait_for_publish(5)

    def birth(self, device: str, grid: str) -> None:
        status = Status(DeviceState.ONLINE, 1, _now_ms(), kind=DeviceKind.SENSOR, grid=grid, interval_s=60.0)
        self.publish(device, Channel.STATUS, wire.encode(status), retain=True)

    def readings(self, device: str, values: list[float]) -> None:
        """Obscuration readings one minute apart, ending now."""
        seq = self.seq[device] = self.seq.get(device, 0) + 1
        end = _now_ms()
        points = tuple(
            Point(end - (len(values) - 1 - i) * 60_000, {"obscuration_pct": v}) for i, v in enumerate(values)
        )
        self.publish(device, Channel.TELEMETRY, wire.encode(Telemetry(seq, end, points)))

    def smoke(self, device: str) -> None:
        seq = self.seq[device] = self.seq.get(device, 0) + 1
        alarm = Event(seq, _now_ms(), f"smoke-{seq}", "smoke", EventState.ACTIVE, Severity.CRITICAL)
        self.publish(device, Channel.EVENT, wire.encode(alarm))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = start_site(tmp_path_factory.mktemp("web-hub"), ("operator-01", "sup-01", "gw-002"))
    yield site
    site.hub.stop()


def test_map_feed_and_language(browser: Any, site: Site) -> None:
    box = SensorBox(site.hub.mqtt_port)
    try:
        for i, grid in enumerate(site.grids, start=1):
            box.birth(f"smoke-{i:03d}-01", grid)
        registry = site.hub.registry
        assert registry is not None
        wait_until(lambda: len(registry.list_public()) == 3, timeout=10, what="3 devices registered")
        box.readings("smoke-001-01", [0.4, 0.6, 0.5, 0.9, 1.4, 2.0])
        wait_until(lambda: (registry.get_public("smoke-001-01") or {}).get("latest"), what="readings stored")

        tab = open_page(browser, site, "operator-01")
        page = tab.page
        assert "token" not in page.url  # the sign-in link leaves the address bar at once
        assert page.evaluate("sessionStorage.getItem('gs.token')") == site.tokens["operator-01"]
        drawn = page.locator("#map g.grid")
        assert sorted(drawn.evaluate_all("els => els.map(e => e.dataset.grid)")) == sorted(site.grids)
        grid1 = page.locator(f'#map g.grid[data-grid="{site.grids[0]}"]')
        assert grid1.get_attribute("data-status") == "ok"
        page.locator("#live.on").wait_for(timeout=5000)

        box.smoke("smoke-001-01")
        raised = time.monotonic()
        page.locator(f'#feed li[data-kind="incident"][data-grid="{site.grids[0]}"]').wait_for(timeout=2000)
        page.wait_for_function(
            f"""document.querySelector('#map g.grid[data-grid="{site.grids[0]}"]').dataset.status === 'alarm'""",
            timeout=max(100, int((2.0 - (time.monotonic() - raised)) * 1000)),
        )
        seen_s = time.monotonic() - raised
        print(f"smoke alarm -> live feed and red grid in {seen_s:.2f} s")
        # the incident becomes a case dispatched by routing; the feed shows it too
        page.locator('#feed li[data-kind="case"]').first.wait_for(timeout=5000)
        assert page.locator(f'#map g.grid[data-grid="{site.grids[1]}"]').get_attribute("data-status") == "ok"
        shot = shoot(page, "overview-en")
        if os.environ.get("GS_UPDATE_SCREENSHOTS"):  # refresh the README's picture on purpose only
            README_SHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, README_SHOT)

        assert page.locator('#nav [data-view="overview"]').inner_text() == "Overview"
        page.click("#lang")
        assert page.locator('#nav [data-view="overview"]').inner_text() == "总览"
        assert (page.locator("#map g.grid text.grid-info").first.text_content() or "").startswith("在办案件")
        # the titles the hub wrote follow the switch: the page reloads them in its language
        titled = "(t) => [...document.querySelectorAll('#board .case-link')].some((b) => b.textContent.includes(t))"
        page.wait_for_function(titled, arg="检测到烟雾（设备 smoke-001-01）", timeout=5000)
        shoot(page, "overview-zh")
        page.click("#lang")
        assert page.locator('#nav [data-view="cases"]').inner_text() == "Case board"
        page.wait_for_function(titled, arg="Smoke detected on smoke-001-01", timeout=5000)

        page.click('#nav [data-view="devices"]')
        page.locator('#devices tr[data-device="smoke-001-01"]').click()
        page.locator('#device-detail svg.chart[data-metric="obscuration_pct"] path.line').wait_for(timeout=5000)
        shoot(page, "devices")
        assert tab.errors == []
    finally:
        box.close()


def act(tab: Tab, case_id: int, action: str, **fields: str) -> None:
    """Click an action on a case card, fill the dialog, confirm, and wait for the toast."""
    page = tab.page
    page.locator(f'#board article[data-case="{case_id}"] button[data-action="{action}"]').click()
    for name, value in fields.items():
        field = page.locator(f'#action-fields [name="{name}"]')
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.click("#action-submit")
    page.locator("#action-dialog").wait_for(state="hidden", timeout=5000)


def card_column(tab: Tab, case_id: int) -> str:
    card = tab.page.locator(f'#board article[data-case="{case_id}"]')
    card.wait_for(timeout=5000)
    return str(card.evaluate("e => e.closest('.column').dataset.column"))


def wait_for_column(tab: Tab, case_id: int, column: str) -> None:
    wait_until(lambda: card_column(tab, case_id) == column, timeout=5, what=f"case {case_id} in {column}")


def test_case_from_report_and_dispatch_to_close_through_the_ui(browser: Any, site: Site) -> None:
    grid2 = site.grids[1]
    op = open_page(browser, site, "operator-01")
    op.page.click('#nav [data-view="cases"]')
    op.page.click("#new-case")
    form = op.page.locator("#new-case-form")
    form.locator('[name="title"]').fill("Overflowing bins at gate 2")
    form.locator('[name="category"]').fill("environment_sanitation")
    form.locator('[name="grid"]').select_option(grid2)
    form.locator('button[type="submit"]').click()
    op.page.locator("#new-case-dialog").wait_for(state="hidden", timeout=5000)
    with site.api("operator-01") as client:
        [case] = [c for c in client.get("/api/v1/cases").json() if c["grid"] == grid2]
    case_id = case["id"]
    assert case["state"] == "registered" and card_column(op, case_id) == "to_dispatch"
    card = op.page.locator(f'#board article[data-case="{case_id}"]')
    assert card.locator("button.action").evaluate_all("bs => bs.map(b => b.dataset.action)") == ["dispatch"]

    act(op, case_id, "dispatch", note="routing picks the grid worker and the force")
    wait_until(lambda: card_column(op, case_id) == "dispatched", timeout=5, what="card in Dispatched")
    assert card.locator("button.action").count() == 0  # operators do not accept
    shoot(op.page, "board-operator")

    worker = open_page(browser, site, "gw-002")
    worker.page.click('#nav [data-view="cases"]')
    assert worker.page.locator('#nav [data-view="evaluation"]').is_hidden()
    for action, column in (("accept", "accepted"), ("handle", "handling"), ("feedback", "feedback")):
        act(worker, case_id, action, note=f"{action} by the grid worker")
        wait_for_column(worker, case_id, column)

    sup = open_page(browser, site, "sup-01")
    sup.page.click('#nav [data-view="cases"]')
    act(sup, case_id, "verify", result="pass", note="checked on site")
    wait_until(lambda: card_column(sup, case_id) == "verified", timeout=5, what="card in Verified")
    act(sup, case_id, "close")
    wait_until(lambda: card_column(sup, case_id) == "closed", timeout=5, what="card in Closed")
    shoot(sup.page, "board-supervisor")

    with site.api("sup-01") as client:
        trail = client.get(f"/api/v1/cases/{case_id}/audit").json()
        assert client.get(f"/api/v1/cases/{case_id}").json()["state"] == "closed"
    assert [(e["actor"], e["action"]) for e in trail] == [
        ("operator-01", "report"),
        ("operator-01", "register"),
        ("operator-01", "dispatch"),
        ("gw-002", "accept"),
        ("gw-002", "handle"),
        ("gw-002", "feedback"),
        ("sup-01", "verify"),
        ("sup-01", "close"),
    ]
    sup.page.click('#nav [data-view="evaluation"]')
    row = sup.page.locator(f'#eval-rows tr[data-key="{grid2}"]')
    row.wait_for(timeout=5000)
    assert row.locator("td").nth(3).inner_text() == "100%"  # closure rate of grid 2
    shoot(sup.page, "evaluation")
    assert op.errors == worker.errors == sup.errors == []


def test_bad_token_shows_the_sign_in_box(browser: Any, site: Site) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(f"{site.url}/?token=gst_not-a-real-token")
    page.locator("#signin").wait_for(timeout=5000)
    assert page.locator("#signin-error").inner_text() != ""
    assert "token" not in page.url and page.locator("#app").is_hidden()
    page.fill("#signin-token", site.tokens["sup-01"])
    page.click('#signin-form button[type="submit"]')
    page.locator('#who[data-person="sup-01"]').wait_for(timeout=5000)
    context.close()


def test_device_command_button_shows_the_command_state(browser: Any, site: Site) -> None:
    """A kiosk's Ping button sends a command; the device view follows it from sent to acked."""
    box = SensorBox(site.hub.mqtt_port)
    device = "kiosk-web-01"
    try:
        status = Status(DeviceState.ONLINE, 1, _now_ms(), kind=DeviceKind.KIOSK, grid=site.grids[0], interval_s=60.0)
        box.publish(device, Channel.STATUS, wire.encode(status), retain=True)
        registry = site.hub.registry
        assert registry is not None
        wait_until(lambda: registry.get_public(device) is not None, timeout=10, what="kiosk registered")
        tab = open_page(browser, site, "operator-01")
        page = tab.page
        page.click('#nav [data-view="devices"]')
        page.locator(f'#devices tr[data-device="{device}"]').click()
        buttons = page.locator("#device-detail button.command-op")
        buttons.first.wait_for(timeout=5000)
        assert [buttons.nth(i).get_attribute("data-op") for i in range(buttons.count())] == [
            op.value for op in wire.KIND_OPS[DeviceKind.KIOSK]
        ]
        page.click('#device-detail button.command-op[data-op="ping"]')
        page.locator('ul.commands li[data-state="sent"]').wait_for(timeout=5000)
        with site.api("operator-01") as client:
            (command,) = client.get(f"/api/v1/devices/{device}/commands").json()
        ack = wire.CommandAck(1, _now_ms(), command["id"], wire.AckResult.OK, "pong")
        box.publish(device, Channel.CMD_ACK, wire.encode(ack))
        page.locator(f'ul.commands li[data-command="{command["id"]}"][data-state="acked"]').wait_for(timeout=5000)
        assert "Ping" in page.locator("ul.commands li").first.inner_text()
        shoot(page, "device-command")
        assert tab.errors == []
    finally:
        box.close()


def test_fire_case_shows_its_plan_and_a_step_is_ticked_by_click(browser: Any, site: Site) -> None:
    box = SensorBox(site.hub.mqtt_port)
    try:
        box.birth("smoke-003-01", site.grids[2])
        box.smoke("smoke-003-01")  # a critical fire: the fire plan rides on its case

        def fire_case() -> dict[str, Any] | None:
            with site.api("sup-01") as client:
                found = [c for c in client.get("/api/v1/cases").json() if c["grid"] == site.grids[2]]
            return found[0] if found and found[0]["dispatched_ms"] else None

        wait_until(lambda: fire_case() is not None, timeout=10, what="the fire case in grid 3")
        case = fire_case()
        assert case is not None and case["plan"] == "fire"
    finally:
        box.close()

    sup = open_page(browser, site, "sup-01")
    sup.page.click('#nav [data-view="cases"]')
    sup.page.locator(f'#board article[data-case="{case["id"]}"] button.case-link').click()
    steps = sup.page.locator("#case-detail ol.plan li")
    steps.first.wait_for(timeout=5000)
    assert steps.evaluate_all("ls => ls.map(l => l.dataset.step)") == [s["name"] for s in case["plan_steps"]]
    assert sup.page.locator("#case-detail h4").first.inner_text() == "Emergency plan: fire"
    review = sup.page.locator('#case-detail ol.plan li[data-step="review"]')
    assert "supervisor" in review.inner_text()
    review.locator("button").click()
    sup.page.locator('#case-detail ol.plan li.done[data-step="review"]').wait_for(timeout=5000)
    assert "done by sup-01" in sup.page.locator('#case-detail ol.plan li[data-step="review"]').inner_text()
    assert sup.page.locator('#case-detail ol.plan li[data-step="review"] button').count() == 0
    shoot(sup.page, "case-plan")
    with site.api("sup-01") as client:
        trail = client.get(f"/api/v1/cases/{case['id']}/audit").json()
    assert [(e["actor"], e["data"].get("step")) for e in trail if e["action"] == "plan_step"] == [("sup-01", "review")]
    assert sup.errors == []
