"""The scripted storm + flapping sensor (hub.incidents.check) over real MQTT into a real hub with cases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.config import HubSettings
from hub.context import need
from hub.incidents.check import run_check
from hub.incidents.queries import IncidentFilter
from hub.service import Hub
from simulators.servers import Mosquitto
from tests.hub.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    monkeypatch.setenv("GRIDSENTINEL_ADMIN_TOKEN", ADMIN_TOKEN)  # run_check reads it
    settings = HubSettings.model_validate(
        {"mqtt_url": mosquitto.url, "http_port": 0, "data_dir": tmp_path / "hub", "client_id": "storm-hub"}
    )
    h = Hub(settings, plugins=("hub.incidents.plugin", "hub.cases.plugin"))
    h.start()
    yield h
    h.stop()


def test_storm_is_one_group_one_case_and_flapping_is_one_incident(hub: Hub, mosquitto: Mosquitto) -> None:
    result = run_check(
        mosquitto.url, f"http://127.0.0.1:{hub.http_port}", site="storm", cameras=200, flaps=20, timeout_s=30
    )
    assert result["seen"] == result["expected"]
    assert hub.ctx is not None
    incidents = need(hub.ctx.services.incident_queries, "incident_queries")

    [group_id] = {i["group_id"] for i in incidents.list_incidents(IncidentFilter(rule="device_offline", limit=1000))}
    cases = [
        c
        for c in need(hub.ctx.services.cases, "cases").list_cases(limit=1000)
        if str(c.get("group_id")) == str(group_id)
    ]
    assert len(cases) == 1
    assert len(cases[0]["incident_ids"]) == 200
