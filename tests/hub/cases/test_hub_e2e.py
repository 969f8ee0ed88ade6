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
from tests.hub.device import GRID, FakeDevice, now_ms
from tests.servers import MosquittoServer, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[Hub]:
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


def test_smoke_alarm_becomes_a_dispatched_case(hub: Hub, mosquitto: MosquittoServer) -> None:
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
    finally:
        dev.close()
