"""Incident and group titles in the reader's language (rule titles in zh from defaults.yaml)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from edge.wire import Event, EventState, Severity
from hub.context import HubContext
from hub.incidents.sink import IncidentSink
from tests.hub.incidents.test_api import KIOSK, T0, db_url, feed, hub

__all__ = ["db_url", "hub"]  # fixtures of test_api, used here
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


def test_incident_titles_follow_the_readers_language(hub: tuple[TestClient, HubContext]) -> None:
    client, ctx = hub
    feed(ctx)
    zh = {i["rule_id"]: i["title"] for i in client.get("/api/v1/incidents", headers=ZH).json()}
    en = {i["rule_id"]: i["title"] for i in client.get("/api/v1/incidents?lang=en", headers=ZH).json()}
    assert zh == {
        "temperature_high": "温度过高（设备 s1）",
        "kiosk_door_open": "自助终端柜门打开（设备 k1）",
        "kiosk_paper_out": "自助终端缺纸（设备 k1）",
    }
    assert en == {
        "temperature_high": "Temperature high on s1",
        "kiosk_door_open": "Kiosk door open on k1",
        "kiosk_paper_out": "Kiosk paper out on k1",
    }
    door = next(i for i in client.get("/api/v1/incidents").json() if i["rule_id"] == "kiosk_door_open")
    assert door["title"] == "Kiosk door open on k1"  # nothing asked: English
    assert client.get(f"/api/v1/incidents/{door['id']}?lang=zh").json()["title"] == "自助终端柜门打开（设备 k1）"
    acked = client.post(f"/api/v1/incidents/{door['id']}/ack?lang=zh", json={"by": "op7"}).json()
    assert acked["title"] == "自助终端柜门打开（设备 k1）"


def test_group_titles_follow_the_readers_language(hub: tuple[TestClient, HubContext]) -> None:
    client, ctx = hub
    sink: IncidentSink = feed(ctx)
    jam = Event(3, T0 + 2, "jam1", "printer_jam", EventState.ACTIVE, Severity.MINOR)
    sink.on_event(KIOSK, jam, T0 + 2)  # a second kiosk_service incident joins the kiosk's group
    sink.drain()
    groups = {g["category"]: g for g in client.get("/api/v1/incident-groups", headers=ZH).json()}
    kiosk = groups["kiosk_service"]
    assert kiosk["title"].endswith("事件 2 起"), kiosk["title"]
    assert groups["public_security"]["title"] == "自助终端柜门打开（设备 k1）"
    one = client.get(f"/api/v1/incident-groups/{kiosk['group_id']}?lang=en").json()
    assert one["title"].startswith("2 incidents: kiosk service in ")
    assert {i["title"] for i in one["incidents"]} == {"Kiosk paper out on k1", "Kiosk printer jam on k1"}
