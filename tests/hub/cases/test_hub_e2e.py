"""The whole path in a real hub on a real mosquitto: smoke alarm → incident group → dispatched case."""

from __future__ import annotations

import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import pytest

from edge import wire
from edge.wire import Channel, DeviceState, Event, EventState, Severity
from hub.config import HubSettings
from hub.service import Hub
from simulators.servers import Mosquitto, wait_until
from tests.hub.device import GRID, FakeDevice, now_ms

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Hub]:
    data_dir = tmp_path / "hub"
    data_dir.mkdir()
    # the example city, renumbered so that the test device's grid is "Grid 1"
    example = resources.files("hub.cases").joinpath("example.yaml").read_text(encoding="utf-8")
    (data_dir / "cases.yaml").write_text(example.replace("110105", GRID[:6]), encoding="utf-8")
    settings = HubSettings.model_validate(
        {"mqtt_url": mosquitto.url, "http_port": 0, "data_dir": data_dir, "client_id": "cases-hub", "demo": True}
    )
    h = Hub(settings, plugins=("hub.incidents.plugin", "hub.cases.plugin"))
    h.start()
    yield h
    h.stop()


def test_smoke_alarm_becomes_a_dispatched_case(hub: Hub, mosquitto: Mosquitto) -> None:
    api = httpx.Client(base_url=f"http://127.0.0.1:{hub.http_port}", timeout=5, headers={"X-Actor": "op1"})
    dev = FakeDevice(mosquitto.port, "smoke-7")
    dev.connect()
    wait_until(lambda: hub.ingest is not None and hub.ingest.connected, timeout=10, what="ingest connected")
    dev.publish_raw(dev.topic(Channel.STATUS), dev.status(DeviceState.ONLINE), retain=True)
    raised = time.monotonic()
    alarm = Event(1, now_ms(), "e1", "smoke", EventState.ACTIVE, Severity.CRITICAL)
    dev.publish_raw(dev.topic(Channel.EVENT), wire.encode(alarm))

    def dispatched() -> bool:  # the case is created, then registered and dispatched in their own commits
        cases = api.get("/api/v1/cases").json()
        return bool(cases) and cases[0]["dispatched_ms"] is not None

    wait_until(dispatched, timeout=10, what="a dispatched case from the smoke alarm")
    [case] = api.get("/api/v1/cases").json()
    latency_ms = case["dispatched_ms"] - alarm.ts
    print(f"smoke alarm -> dispatched case in {latency_ms} ms (poll seen after {time.monotonic() - raised:.2f} s)")
    try:
        assert case["state"] == "dispatched", case
        assert (case["grid"], case["category"], case["force"], case["assignees"]) == (
            GRID,
            "fire_safety",
            "fire",
            ["f1", "w1"],
        )
        assert 0 <= latency_ms < 1000  # device timestamp → dispatch recorded by the case service
        assert api.get(f"/api/v1/cases/{case['id']}/audit/verify").json()["ok"] is True
        # the fire plan rides along: its checklist, due from the report, nothing done yet
        assert case["plan"] == "fire"
        assert [(s["name"], s.get("role") or s.get("force")) for s in case["plan_steps"]] == [
            ("notify", "fire"),
            ("evacuate", "grid_worker"),
            ("secure", "fire"),
            ("recover", "grid_worker"),
            ("review", "supervisor"),
        ]
        assert all(s["done_ms"] is None and s["due_ms"] > case["created_ms"] for s in case["plan_steps"])
    finally:
        dev.close()


def test_gas_alarm_gets_the_gas_leak_plan(hub: Hub, mosquitto: Mosquitto) -> None:
    api = httpx.Client(base_url=f"http://127.0.0.1:{hub.http_port}", timeout=5, headers={"X-Actor": "op1"})
    dev = FakeDevice(mosquitto.port, "gas-2")
    dev.connect()
    try:
        wait_until(lambda: hub.ingest is not None and hub.ingest.connected, timeout=10, what="ingest connected")
        dev.publish_raw(dev.topic(Channel.STATUS), dev.status(DeviceState.ONLINE), retain=True)
        dev.publish_raw(
            dev.topic(Channel.EVENT),
            wire.encode(Event(1, now_ms(), "g1", "gas_leak", EventState.ACTIVE, Severity.CRITICAL)),
        )
        wait_until(lambda: bool(api.get("/api/v1/cases").json()), timeout=10, what="a case from the gas alarm")
        [case] = api.get("/api/v1/cases").json()
        assert (case["category"], case["plan"]) == ("fire_safety", "gas-leak")
        assert "shut_off" in [s["name"] for s in case["plan_steps"]]
    finally:
        dev.close()


def test_anonymous_open311_readers_see_no_device_case_nor_internal_note(hub: Hub, mosquitto: Mosquitto) -> None:
    """Issue #21 through the whole hub: a real device alarm and a resident's request side by side."""
    base = f"http://127.0.0.1:{hub.http_port}"
    op = httpx.Client(base_url=base, timeout=5, headers={"X-Actor": "op1"})
    dev = FakeDevice(mosquitto.port, "smoke-7")
    dev.connect()
    try:
        wait_until(lambda: hub.ingest is not None and hub.ingest.connected, timeout=10, what="ingest connected")
        dev.publish_raw(dev.topic(Channel.STATUS), dev.status(DeviceState.ONLINE), retain=True)
        alarm = Event(1, now_ms(), "e1", "smoke", EventState.ACTIVE, Severity.CRITICAL)
        dev.publish_raw(dev.topic(Channel.EVENT), wire.encode(alarm))
        wait_until(lambda: bool(op.get("/api/v1/cases").json()), timeout=10, what="the device-raised case")
        [device_case] = op.get("/api/v1/cases").json()
        assert device_case["source"] == "device" and "smoke-7" in device_case["description"]
    finally:
        dev.close()
    filed = httpx.post(
        f"{base}/open311/v2/requests.json",
        data={
            "service_code": "environment_sanitation",
            "lat": "39.91",
            "long": "116.435",
            "email": "me@example.org",
            "description": "bins overflowing",
            "address_string": "Building 3",
        },
    )
    assert filed.status_code == 201
    resident_case = int(filed.json()[0]["service_request_id"])
    for case_id in (device_case["id"], resident_case):
        note = {"note": "internal: smoke-7 battery swapped by w1", "public_note": "Being looked at."}
        assert op.post(f"/api/v1/cases/{case_id}/register", json=note).status_code in (200, 409)
    listed = httpx.get(f"{base}/open311/v2/requests.json")
    assert [r["service_request_id"] for r in listed.json()] == [str(resident_case)]
    assert listed.json()[0]["status_notes"].endswith("Being looked at.")
    for leak in ("smoke-7", "internal", "me@example.org", "bins overflowing", "Building 3", "devices"):
        assert leak not in listed.text, leak
    assert httpx.get(f"{base}/open311/v2/requests/{device_case['id']}.json").status_code == 404
    assert httpx.get(f"{base}/open311/v2/requests/{resident_case}.xml").status_code == 200
