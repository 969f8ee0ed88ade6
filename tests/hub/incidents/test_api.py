"""The incidents/rules/groups REST API on a real SQLite state DB and the embedded series store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from edge.wire import DeviceKind, Event, EventState, Point, Severity, SnapshotRef, Telemetry
from hub.context import HubContext, need
from hub.incidents.plugin import install
from hub.incidents.sink import IncidentSink
from hub.ingest.sinks import DeviceRef
from hub.security.auth import current_principal
from hub.security.authz import Principal
from hub.series.base import SeriesPoint
from hub.series.embedded import EmbeddedStore
from tests.hub.incidents.conftest import sqlite_db

T0 = 1_700_000_000_000


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only here: the backend-sensitive races are covered on both backends in test_service."""
    return sqlite_db(tmp_path)


GRID = "110101001001001"
#: A sensor that only reports readings: the hub's threshold rules judge its alarms.
SENSOR = DeviceRef("s1", "site-a", DeviceKind.SENSOR, GRID, {"alarms": "telemetry"})
KIOSK = DeviceRef("k1", "site-a", DeviceKind.KIOSK, "110101001001002")


class DirectWriter:
    """Writes submitted points straight into the store (the hub's writer batches; same interface)."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store

    def submit(self, points: Sequence[SeriesPoint]) -> None:
        self.store.write(points)


@pytest.fixture
def hub(tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]) -> Iterator[tuple[TestClient, HubContext]]:
    ctx = HubContext(data_dir=tmp_path, engine=engine, sessions=sessions, clock=lambda: (T0 + 3_600_000) / 1000)
    store = EmbeddedStore(tmp_path / "series.db")
    ctx.services.store = store
    ctx.services.writer = DirectWriter(store)
    install(ctx)
    assert [name for name, _ in ctx.tasks] == ["incidents", "incidents-data-loss"]
    app = FastAPI()
    app.state.ctx = ctx
    # the caller is operator op7 (who may see what is tested in tests/hub/test_authz.py)
    app.dependency_overrides[current_principal] = lambda: Principal("op7", frozenset({"operator"}))
    for router in ctx.routers:
        app.include_router(router)
    with TestClient(app) as client:
        yield client, ctx
    store.close()


def feed(ctx: HubContext) -> IncidentSink:
    sink: IncidentSink = need(ctx.services.incident_sink, "incident_sink")
    store = ctx.services.store
    assert isinstance(store, EmbeddedStore)
    for i in range(40):  # temp climbs past 60 and stays there: temperature_high opens at 30 s above
        ts = T0 + i * 5000
        value = 50.0 + i
        store.write([SeriesPoint("sensor", {"site": "site-a", "grid": GRID, "device": "s1"}, {"temp_c": value}, ts)])
        sink.on_telemetry(SENSOR, Telemetry(i, ts, (Point(ts, {"temp_c": value}),)), ts)
    snap = SnapshotRef(sha256="ab" * 32, size=1000)
    sink.on_event(KIOSK, Event(1, T0, "door1", "door_open", EventState.ACTIVE, Severity.MAJOR, snapshot=snap), T0)
    sink.on_event(KIOSK, Event(2, T0 + 1, "pap1", "paper_out", EventState.ACTIVE, Severity.MINOR), T0 + 1)
    sink.drain()
    return sink


def test_list_filter_get_ack_note_close(hub: tuple[TestClient, HubContext]) -> None:
    client, ctx = hub
    feed(ctx)
    everything = client.get("/api/v1/incidents").json()
    assert sorted(i["rule_id"] for i in everything) == ["kiosk_door_open", "kiosk_paper_out", "temperature_high"]
    assert [i["rule_id"] for i in client.get("/api/v1/incidents", params={"category": "fire_safety"}).json()] == [
        "temperature_high"
    ]
    assert len(client.get("/api/v1/incidents", params={"grid": "110101001001002"}).json()) == 2
    assert len(client.get("/api/v1/incidents", params={"grid": "110101001"}).json()) == 3  # street prefix
    assert len(client.get("/api/v1/incidents", params={"severity": "minor", "device": "k1"}).json()) == 1
    assert client.get("/api/v1/incidents", params={"since": T0 + 1000}).json()[0]["rule_id"] == "temperature_high"
    assert client.get("/api/v1/incidents", params={"state": "bogus"}).status_code == 422

    hot = next(i for i in everything if i["rule_id"] == "temperature_high")
    detail = client.get(f"/api/v1/incidents/{hot['id']}").json()
    assert detail["readings"]["metric"] == "temp_c"
    values = [r["value"] for r in detail["readings"]["rows"] if r["value"] is not None]
    assert values and max(values) > 80
    door = next(i for i in everything if i["rule_id"] == "kiosk_door_open")
    assert client.get(f"/api/v1/incidents/{door['id']}").json()["snapshots"] == [
        {
            "event_id": "door1",
            "sha256": "ab" * 32,
            "href": "/api/v1/snapshots/k1/door1",
            "meta": "/api/v1/snapshots/k1/door1/meta",
        }
    ]

    acked = client.post(f"/api/v1/incidents/{door['id']}/ack", json={"by": "op7"}).json()
    assert acked["acked_by"] == "op7" and acked["acked_ms"] == T0 + 3_600_000
    assert (
        client.post(f"/api/v1/incidents/{door['id']}/notes", json={"author": "op7", "text": "sent"}).status_code == 201
    )
    assert [n["text"] for n in client.get(f"/api/v1/incidents/{door['id']}").json()["notes"]] == ["sent"]
    closed = client.post(f"/api/v1/incidents/{door['id']}/close", json={"by": "op7"}).json()
    assert closed["state"] == "closed"
    assert client.get("/api/v1/incidents/99999").status_code == 404
    assert client.post("/api/v1/incidents/99999/ack", json={"by": "x"}).status_code == 404
    # incidents were written as series for Grafana annotations (opened x3, closed x1)
    assert need(ctx.services.store, "store").count("incident") >= 3


def test_groups_api(hub: tuple[TestClient, HubContext]) -> None:
    client, ctx = hub
    feed(ctx)
    groups = client.get("/api/v1/incident-groups", params={"state": "open"}).json()
    assert sorted(g["category"] for g in groups) == ["fire_safety", "kiosk_service", "public_security"]
    one = client.get(f"/api/v1/incident-groups/{groups[0]['group_id']}").json()
    assert [i["id"] for i in one["incidents"]] == one["incident_ids"]
    assert client.get("/api/v1/incident-groups/424242").status_code == 404


def test_rules_crud_and_engine_reload(hub: tuple[TestClient, HubContext]) -> None:
    client, ctx = hub
    rules = client.get("/api/v1/rules").json()
    assert {"smoke", "device_offline", "temperature_high"} <= {r["id"] for r in rules}
    body = {
        "id": "pm25_high",
        "kind": "threshold",
        "metric": "pm25",
        "op": ">",
        "value": 150,
        "category": "environment_sanitation",
        "severity": "major",
    }
    assert client.post("/api/v1/rules", json=body).status_code == 201
    assert client.post("/api/v1/rules", json=body).status_code == 409
    bad = client.post("/api/v1/rules", json=body | {"id": "x2", "scope": {"kinds": ["toaster"]}})
    assert bad.status_code == 422 and bad.json()["detail"]["path"] == "body.scope.kinds[0]"
    typo = client.post("/api/v1/rules", json=body | {"id": "x3", "for": 3})
    assert typo.status_code == 422 and typo.json()["detail"]["path"] == "body.for"
    # a word the vocabulary does not know is refused by name, with the closest known one
    event = {"id": "x4", "kind": "event", "category": "public_security", "severity": "minor"}
    misspelt = client.post("/api/v1/rules", json=event | {"event_types": ["tamper_defocused"]})
    assert misspelt.status_code == 422
    assert "'tamper_defocused'" in misspelt.text and "'tamper_defocus'" in misspelt.text
    wrong_category = client.post("/api/v1/rules", json=body | {"id": "x5", "category": "kiosk"})
    assert wrong_category.status_code == 422 and "'kiosk_service'" in wrong_category.text
    own = event | {"id": "x6", "event_types": ["balcony_fire"], "declares": ["balcony_fire"]}
    assert client.post("/api/v1/rules", json=own).status_code == 201  # declared: an operator's own alarm
    assert client.delete("/api/v1/rules/x6").status_code == 204

    sink: IncidentSink = need(ctx.services.incident_sink, "incident_sink")
    assert "pm25_high" in sink.engine.rules
    updated = client.put("/api/v1/rules/pm25_high", json=body | {"value": 200}).json()
    assert updated["value"] == 200 and sink.engine.rules["pm25_high"].value == 200  # type: ignore[union-attr]
    assert client.put("/api/v1/rules/nope", json=body).status_code == 404
    assert client.delete("/api/v1/rules/pm25_high").status_code == 204
    assert "pm25_high" not in sink.engine.rules
    assert client.get("/api/v1/rules/pm25_high").status_code == 404
