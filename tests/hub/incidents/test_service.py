"""Incident lifecycle on a real SQLite file: uniqueness under races, repeats, flaps, groups."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from edge.wire import DeviceKind, Event, EventState, Severity
from hub.bus import EventBus
from hub.cases.service import CaseService
from hub.context import HubContext, Services
from hub.db import make_engine, session_factory
from hub.incidents.models import IncidentGroupRow, IncidentRow
from hub.incidents.plugin import build
from hub.incidents.service import IncidentService
from hub.ingest.sinks import DeviceRef
from hub.rules.state import Candidate

T0 = 1_700_000_000_000
GRID = "110101001001001"


def cand(action: str = "open", device: str = "d1", ts: int = T0, **kw: Any) -> Candidate:
    base: dict[str, Any] = {
        "action": action,
        "rule_id": "smoke",
        "rule_kind": "event",
        "subject": device,
        "device_id": device,
        "site": "site-a",
        "grid": GRID,
        "category": "fire_safety",
        "severity": "critical",
        "title": f"smoke on {device}",
        "ts_ms": ts,
    }
    return Candidate(**(base | kw))


def rows(sessions: sessionmaker[Session]) -> list[IncidentRow]:
    with sessions() as s:
        return list(s.scalars(select(IncidentRow).order_by(IncidentRow.id)))


class CasesSpy:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def on_incident_group(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(data)


def test_open_repeat_clear_and_publish(sessions: sessionmaker[Session]) -> None:
    bus, cases = EventBus(), CasesSpy()
    sub = bus.subscribe()
    svc = IncidentService(sessions, bus=bus, services=Services(cases=cast(CaseService, cases)))
    svc.apply([cand(event_id="e1"), cand("update", ts=T0 + 1000, repeat=True, event_id="e2")])
    [row] = rows(sessions)
    assert (row.state, row.repeats, row.event_ids) == ("open", 1, ["e1", "e2"])
    svc.apply([cand("clear", ts=T0 + 5000)])
    [row] = rows(sessions)
    assert (row.state, row.closed_ms, row.close_reason) == ("closed", T0 + 5000, "cleared")
    kinds = [(e.kind, e.data.get("change", e.data.get("state"))) for e in sub.get(0.1)]
    assert kinds == [
        ("incident", "opened"),
        ("incident_group", "open"),
        ("incident", "repeated"),
        ("incident", "closed"),
        ("incident_group", "closed"),
    ]
    assert [c["state"] for c in cases.calls] == ["open", "closed"]
    assert cases.calls[0]["incident_ids"] == [row.id] and cases.calls[0]["device_ids"] == ["d1"]


def test_many_threads_one_open_incident_repeats_counted(sessions: sessionmaker[Session]) -> None:
    svc = IncidentService(sessions)
    n_threads, per_thread = 8, 5
    barrier = threading.Barrier(n_threads)

    def worker() -> None:
        barrier.wait()
        for i in range(per_thread):
            svc.apply([cand(ts=T0 + i)])  # every replica/thread thinks it is the first

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [row] = rows(sessions)
    assert row.state == "open"
    assert row.repeats == n_threads * per_thread - 1


def test_two_replicas_with_own_engines_share_one_db(db_url: str) -> None:
    replicas = [make_engine(db_url) for _ in range(2)]  # two hubs: separate engines and pools
    services = [IncidentService(session_factory(e)) for e in replicas]
    barrier = threading.Barrier(4)

    def worker(svc: IncidentService) -> None:
        barrier.wait()
        for i in range(10):
            svc.apply([cand(device=f"d{i % 2}", ts=T0 + i)])

    threads = [threading.Thread(target=worker, args=(services[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    found = rows(session_factory(replicas[0]))
    assert sorted((r.device_id, r.state, r.repeats) for r in found) == [("d0", "open", 19), ("d1", "open", 19)]
    for e in replicas:
        e.dispose()


def test_flap_reopens_same_incident(sessions: sessionmaker[Session]) -> None:
    svc = IncidentService(sessions)
    svc.apply([cand()])
    for i in range(1, 20):
        svc.apply([cand("clear", ts=T0 + i * 2000), cand("open", ts=T0 + i * 2000 + 1000, flap=True)])
    [row] = rows(sessions)
    assert (row.state, row.flap_count) == ("open", 19)


def test_storm_of_offline_devices_is_one_group(sessions: sessionmaker[Session]) -> None:
    cases = CasesSpy()
    svc = IncidentService(sessions, services=Services(cases=cast(CaseService, cases)))
    for i in range(200):
        svc.apply(
            [
                cand(
                    rule_id="device_offline",
                    rule_kind="offline",
                    device=f"cam{i:03d}",
                    grid=f"11010100100100{i % 10}",
                    category="device_fault",
                    severity="major",
                    ts=T0 + i * 50,
                )
            ]
        )
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(IncidentRow)) == 200
        [group] = s.scalars(select(IncidentGroupRow)).all()
        assert (group.scope_key, group.state) == ("site:site-a", "open")
    assert len({c["group_id"] for c in cases.calls}) == 1
    assert len(cases.calls[-1]["incident_ids"]) == 200
    # a much later incident starts a new group
    svc.apply([cand(rule_id="device_offline", rule_kind="offline", device="late", ts=T0 + 3_600_000)])
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(IncidentGroupRow)) == 2


def test_manual_close_then_new_raise_opens_new(sessions: sessionmaker[Session]) -> None:
    svc = IncidentService(sessions)
    forgotten: list[tuple[str, str]] = []
    svc.on_manual_close.append(lambda r, s: forgotten.append((r, s)))
    [ch] = svc.apply([cand()])
    svc.acknowledge(ch.incident["id"], "op1")
    closed = svc.close(ch.incident["id"], "op1")
    assert closed["state"] == "closed" and closed["acked_by"] == "op1"
    assert forgotten == [("smoke", "d1")]
    svc.apply([cand("update", ts=T0 + 10, repeat=True)])
    assert [(r.state, r.repeats) for r in rows(sessions)] == [("closed", 0), ("open", 0)]


def test_two_hub_replicas_feeding_the_same_alarm(db_url: str, tmp_path: Path) -> None:
    """Two full replicas (own DB engine, rule engine and sink) get the same device's smoke events at once."""
    engines = [make_engine(db_url) for _ in range(2)]
    sinks = [
        build(
            HubContext(data_dir=tmp_path, engine=e, sessions=session_factory(e), clock=lambda: T0 / 1000),
            instance=f"hub-{i}",
        )
        for i, e in enumerate(engines)
    ]
    device = DeviceRef("smoke-1", "site-a", DeviceKind.SENSOR, GRID)
    per_replica = 15
    barrier = threading.Barrier(2)

    def replica(i: int) -> None:
        barrier.wait()
        for n in range(per_replica):
            seq = i * 1000 + n
            ev = Event(seq, T0 + n, f"e{seq}", "smoke", EventState.ACTIVE, Severity.CRITICAL)
            sinks[i].on_event(device, ev, T0 + n)
            sinks[i].drain()

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    found = [r for r in rows(session_factory(engines[0])) if r.rule_id == "smoke"]
    assert [(r.state, r.repeats) for r in found] == [("open", 2 * per_replica - 1)]
    for e in engines:
        e.dispose()
