"""The incidents sink fed straight with decoded messages (no broker), on a real SQLite file."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from edge.wire import DeviceKind, Event, EventState, Point, Severity, Telemetry
from hub.cases.service import CaseService
from hub.context import HubContext
from hub.incidents.models import IncidentGroupRow, IncidentRow
from hub.incidents.plugin import build, data_loss_listener
from hub.incidents.sink import HIST_SETTLE_S, SET_ASIDE_AFTER, CandidateFailed
from hub.ingest.deadletter import DeadLetterStore
from hub.ingest.sinks import DeviceRef
from hub.metrics import IngestStats
from hub.rules.state import Candidate
from simulators.servers import wait_until
from tests.hub.incidents.conftest import sqlite_db

T0 = 1_700_000_000_000


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only here: the backend-sensitive races are covered on both backends in test_service."""
    return sqlite_db(tmp_path)


GRID = "110101001001001"
#: A sensor that only reports readings: the hub's threshold rules judge its alarms.
SENSOR = DeviceRef("s1", "site-a", DeviceKind.SENSOR, GRID, {"alarms": "telemetry"})


class FakeClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


def make_ctx(tmp_path: Path, engine: Engine, sessions: sessionmaker[Session], clock: FakeClock) -> HubContext:
    return HubContext(data_dir=tmp_path, engine=engine, sessions=sessions, clock=clock)


def incidents(sessions: sessionmaker[Session]) -> list[IncidentRow]:
    with sessions() as s:
        return list(s.scalars(select(IncidentRow).order_by(IncidentRow.id)))


def temp(seq: int, ts: int, value: float, hist: bool = False) -> Telemetry:
    return Telemetry(seq=seq, ts=ts, points=(Point(ts, {"temp_c": value}),), hist=hist)


def smoke(seq: int, ts: int, active: bool = True, hist: bool = False) -> Event:
    state = EventState.ACTIVE if active else EventState.CLEARED
    return Event(seq, ts, f"ev{seq}", "smoke", state, Severity.CRITICAL, hist=hist)


def test_restart_mid_duration_window_fires_at_the_right_time(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    clock = FakeClock(T0)
    sink = build(make_ctx(tmp_path, engine, sessions, clock), instance="hub-1")
    # default temperature_high: temp_c > 60 for 30 s
    for i in range(4):
        ts = T0 + i * 5000
        sink.on_telemetry(SENSOR, temp(i, ts, 65.0), ts)
    sink.drain()
    sink.save_state()  # the hub stops 15 s into the 30 s window
    assert incidents(sessions) == []

    restarted = build(make_ctx(tmp_path, engine, sessions, clock), instance="hub-1")
    for i in range(4, 6):  # 20 s, 25 s: still inside the window
        ts = T0 + i * 5000
        restarted.on_telemetry(SENSOR, temp(i, ts, 66.0), ts)
    restarted.drain()
    assert incidents(sessions) == []
    restarted.on_telemetry(SENSOR, temp(6, T0 + 30_000, 66.0), T0 + 30_000)
    restarted.drain()
    [row] = incidents(sessions)
    assert (row.rule_id, row.opened_ms, row.state) == ("temperature_high", T0 + 30_000, "open")


def test_without_saved_state_the_window_starts_over(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    clock = FakeClock(T0)
    sink = build(make_ctx(tmp_path, engine, sessions, clock), instance="hub-1")
    for i in range(4):
        sink.on_telemetry(SENSOR, temp(i, T0 + i * 5000, 65.0), T0 + i * 5000)
    other = build(make_ctx(tmp_path, engine, sessions, clock), instance="hub-2")  # never saved
    other.on_telemetry(SENSOR, temp(6, T0 + 30_000, 66.0), T0 + 30_000)
    other.drain()
    assert incidents(sessions) == []


def test_historical_readings_never_raise_an_incident(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    sink = build(make_ctx(tmp_path, engine, sessions, FakeClock(T0)))
    for i in range(20):
        ts = T0 + i * 5000
        sink.on_telemetry(SENSOR, temp(i, ts, 99.0, hist=True), T0 + 200_000)
    sink.tick()
    sink.drain()
    assert incidents(sessions) == []


def test_an_alarm_still_on_after_an_outage_opens_its_incident_with_both_times(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    clock = FakeClock(T0 + 300_000)
    sink = build(make_ctx(tmp_path, engine, sessions, clock))
    sink.on_event(SENSOR, smoke(1, T0, hist=True), T0 + 300_000)  # raised five minutes ago, offline
    sink.release_held()
    sink.drain()
    assert incidents(sessions) == []  # held while the replay may still bring its clear
    assert sink.pending() == 1
    clock.ms += int(HIST_SETTLE_S * 1000)
    assert sink.release_held() == 1
    sink.drain()
    [row] = incidents(sessions)
    assert (row.rule_id, row.state, row.opened_ms, row.detail["received_ms"]) == ("smoke", "open", T0, T0 + 300_000)
    assert row.group_id is not None  # grouped, so the case workflow dispatches it like any alarm
    # and a replayed clear (the device reconnects again later) closes it
    sink.on_event(SENSOR, smoke(2, T0 + 400_000, active=False, hist=True), T0 + 500_000)
    sink.drain()
    [row] = incidents(sessions)
    assert (row.state, row.closed_ms) == ("closed", T0 + 400_000)


def test_an_alarm_raised_and_cleared_inside_an_outage_is_recorded_closed_and_pages_nobody(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    clock = FakeClock(T0 + 300_000)
    ctx = make_ctx(tmp_path, engine, sessions, clock)
    sink = build(ctx)
    sink.on_event(SENSOR, smoke(1, T0, hist=True), T0 + 300_000)
    sink.on_event(SENSOR, smoke(2, T0 + 20_000, active=False, hist=True), T0 + 300_010)
    sink.drain()
    [row] = incidents(sessions)
    assert (row.state, row.opened_ms, row.closed_ms, row.close_reason) == ("closed", T0, T0 + 20_000, "cleared_offline")
    assert row.detail["received_ms"] == T0 + 300_000 and row.detail["hist"] is True
    assert row.group_id is None  # no group: no case, nobody paged
    with sessions() as s:
        assert list(s.scalars(select(IncidentGroupRow))) == []
    assert sink.pending() == 0
    # back on soon after, live: a flap, as after a live clear: the same incident opens again, dispatched
    sink.on_event(SENSOR, smoke(3, T0 + 300_500), T0 + 300_500)
    sink.drain()
    [row] = incidents(sessions)
    assert (row.state, row.flap_count) == ("open", 1) and row.group_id is not None


def test_the_first_live_message_ends_the_replay_and_releases_what_it_held(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    clock = FakeClock(T0 + 300_000)
    sink = build(make_ctx(tmp_path, engine, sessions, clock))
    sink.on_event(SENSOR, smoke(1, T0, hist=True), T0 + 300_000)
    sink.on_telemetry(SENSOR, temp(2, T0 + 10_000, 21.0, hist=True), T0 + 300_001)  # still the replay
    sink.drain()
    assert incidents(sessions) == [] and sink.pending() == 1
    sink.on_telemetry(SENSOR, temp(3, T0 + 300_002, 21.0), T0 + 300_002)  # live: the replay is over
    sink.drain()
    [row] = incidents(sessions)
    assert (row.state, row.opened_ms) == ("open", T0) and row.group_id is not None
    assert sink.pending() == 0


def test_a_slow_replay_still_pairs_an_open_with_its_clear(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A busy hub or a long backlog: the clear comes seconds after the open, but in the same replay."""
    clock = FakeClock(T0 + 300_000)
    sink = build(make_ctx(tmp_path, engine, sessions, clock))
    sink.on_event(SENSOR, smoke(1, T0, hist=True), T0 + 300_000)
    clock.ms += 20_000
    assert sink.release_held() == 0
    sink.on_event(SENSOR, smoke(2, T0 + 20_000, active=False, hist=True), T0 + 320_000)
    sink.drain()
    [row] = incidents(sessions)
    assert (row.state, row.close_reason, row.group_id) == ("closed", "cleared_offline", None)


def test_held_historical_alarms_are_stored_on_shutdown(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    sink = build(make_ctx(tmp_path, engine, sessions, FakeClock(T0 + 300_000)))
    sink.on_event(SENSOR, smoke(1, T0, hist=True), T0 + 300_000)
    stop = threading.Event()
    stop.set()
    sink.run(stop)  # the worker's last act: release what it held, store it
    assert [r.state for r in incidents(sessions)] == ["open"]


def test_event_repeats_counted_and_snapshot_kept(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    sink = build(make_ctx(tmp_path, engine, sessions, FakeClock(T0)))
    for i in range(5):
        sink.on_event(SENSOR, smoke(i, T0 + i), T0 + i)
    sink.drain()
    [row] = incidents(sessions)
    assert (row.rule_id, row.category, row.severity, row.repeats) == ("smoke", "fire_safety", "critical", 4)
    assert row.event_ids == [f"ev{i}" for i in range(5)]


def test_flapping_sensor_is_one_incident(tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]) -> None:
    clock = FakeClock(T0)
    sink = build(make_ctx(tmp_path, engine, sessions, clock))
    # water_leak: event rule, closes at once when cleared; it flaps every 2 s for 100 cycles
    dev = DeviceRef("w1", "site-a", DeviceKind.SENSOR, GRID)
    for i in range(100):
        ts = T0 + i * 4000
        for seq, active, t in ((2 * i, True, ts), (2 * i + 1, False, ts + 2000)):
            ev = Event(
                seq, t, f"w{seq}", "water_leak", EventState.ACTIVE if active else EventState.CLEARED, Severity.MAJOR
            )
            sink.on_event(dev, ev, t)
    sink.drain()
    [row] = incidents(sessions)
    assert (row.state, row.flap_count) == ("closed", 99)


def test_storm_of_200_cameras_offline_is_one_group(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    clock = FakeClock(T0)
    ctx = make_ctx(tmp_path, engine, sessions, clock)
    calls: list[dict[str, object]] = []

    class Cases:
        def on_incident_group(self, data: dict[str, object]) -> None:
            calls.append(data)

    ctx.services.cases = cast(CaseService, Cases())  # a spy with the one method incidents call
    sink = build(ctx)
    for i in range(200):
        cam = DeviceRef(f"cam{i:03d}", "site-a", DeviceKind.CAMERA, f"1101010010010{i % 20:02d}")
        sink.on_health(cam, "online", "offline", T0 + i * 50)  # 200 cameras within 10 s
    sink.drain()
    with sessions() as s:
        groups = s.scalars(select(IncidentGroupRow)).all()
    assert len(incidents(sessions)) == 200
    assert len(groups) == 1
    assert len({c["group_id"] for c in calls}) == 1
    assert calls[-1]["state"] == "open" and len(calls[-1]["device_ids"]) == 200  # type: ignore[arg-type]


def test_data_loss_on_the_bus_raises_an_incident(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    ctx = make_ctx(tmp_path, engine, sessions, FakeClock(T0))
    sink = build(ctx)
    stop = threading.Event()
    listener = threading.Thread(target=data_loss_listener(ctx, sink), args=(stop,))
    worker = threading.Thread(target=sink.run, args=(stop,))
    listener.start()
    worker.start()
    try:
        wait_until(lambda: len(ctx.bus._subs) > 0, timeout=5)
        data = {"device_id": "s1", "site": "site-a", "first": 10, "last": 19, "count": 10, "recorded_ms": T0}
        ctx.bus.publish("data_loss", data)
        wait_until(lambda: len(incidents(sessions)) == 1, timeout=5)
    finally:
        stop.set()
        listener.join(5)
        worker.join(5)
    [row] = incidents(sessions)
    assert (row.rule_id, row.detail["count"], row.state) == ("data_loss", 10, "open")


def test_open_incidents_are_rebuilt_into_a_fresh_engine(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    clock = FakeClock(T0)
    first = build(make_ctx(tmp_path, engine, sessions, clock), instance="hub-1")
    first.on_event(SENSOR, Event(1, T0, "w1", "water_leak", EventState.ACTIVE, Severity.MAJOR), T0)
    first.drain()  # the hub dies before it ever saves its engine state
    second = build(make_ctx(tmp_path, engine, sessions, clock), instance="hub-1")
    second.on_event(SENSOR, Event(2, T0 + 5000, "w2", "water_leak", EventState.CLEARED, Severity.MAJOR), T0 + 5000)
    second.drain()
    [row] = incidents(sessions)
    assert (row.state, row.closed_ms) == ("closed", T0 + 5000)


def test_a_candidate_the_store_keeps_refusing_is_set_aside_into_the_dead_letter(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """Not an outage but one bad candidate (here a detail the JSON column cannot store): after
    SET_ASIDE_AFTER failures in a row it goes to the dead letter with the reason, and the
    candidates behind it are stored instead of waiting forever."""
    ctx = make_ctx(tmp_path, engine, sessions, FakeClock(T0))
    deadletters = DeadLetterStore(sessions, IngestStats())
    ctx.services.deadletters = deadletters
    sink = build(ctx, instance="hub-1")

    def cand(device: str, detail: dict[str, Any] | None = None) -> Candidate:
        return Candidate(
            "open", "smoke", "event", device, device, "site-a", GRID, "fire_safety", "critical",
            f"smoke on {device}", T0, detail=detail or {},
        )  # fmt: skip

    good1, bad, good2 = cand("d1"), cand("d2", {"x": {1}}), cand("d3")
    sink._enqueue([good1, bad, good2])
    for n in range(1, SET_ASIDE_AFTER):
        with pytest.raises(CandidateFailed, match=f"smoke/d2 failed .*not JSON serializable.*failure {n} of 3"):
            sink.drain()
    assert sink.pending() == 2 and sink.set_aside == 0  # kept, in order, while it might still pass
    with caplog.at_level(logging.ERROR, logger="hub.incidents.sink"):
        assert sink.drain() == 0  # set aside; the rest goes back
    assert sink.drain() == 1
    assert [r.subject for r in incidents(sessions)] == ["d1", "d3"]
    assert sink.set_aside == 1 and sink.pending() == 0
    assert any("smoke/d2 set aside after 3 failures" in r.getMessage() for r in caplog.records)
    total, items = deadletters.list_page()
    assert total == 1
    row = items[0]
    assert (row.reason, row.source, row.device_id, row.topic) == (
        "incident_failed",
        "incident",
        "d2",
        "incident/smoke/d2",
    )
    assert "not JSON serializable" in row.detail and b'"subject": "d2"' in row.payload


def test_the_worker_logs_a_failing_candidate_as_itself_not_as_an_outage(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """The worker loop: a candidate the store refuses is logged as that candidate's failure (a
    warning per try, then the set-aside error), never as "incident store unavailable"."""
    ctx = make_ctx(tmp_path, engine, sessions, FakeClock(T0))
    ctx.services.deadletters = DeadLetterStore(sessions, IngestStats())
    sink = build(ctx, instance="hub-1")
    bad = Candidate(
        "open", "smoke", "event", "d9", "d9", "site-a", GRID, "fire_safety", "critical", "smoke on d9", T0,
        detail={"x": {1}},
    )  # fmt: skip
    sink._enqueue([bad])
    stop = threading.Event()
    worker = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    with caplog.at_level(logging.WARNING, logger="hub.incidents.sink"):
        worker.start()
        try:
            wait_until(lambda: sink.set_aside == 1, timeout=20)
        finally:
            stop.set()
        worker.join(10)
    assert sink.set_aside == 1
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    tries = [m for level, m in messages if level == logging.WARNING and "smoke/d9 failed" in m]
    assert len(tries) == SET_ASIDE_AFTER - 1 and "failure 1 of 3" in tries[0] and "failure 2 of 3" in tries[1]
    assert any(level == logging.ERROR and "smoke/d9 set aside" in m for level, m in messages)
    assert not any("unavailable" in m for _, m in messages), messages


def test_a_detector_that_raises_its_own_alarm_is_not_judged_again_from_its_readings(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A smoke detector's heat alarm and its hot readings are one fire: one incident, not two."""
    detector = DeviceRef("s2", "site-a", DeviceKind.SENSOR, GRID, {"profile": "smoke"})
    sink = build(make_ctx(tmp_path, engine, sessions, FakeClock(T0)))
    sink.on_event(detector, Event(1, T0, "ev1", "heat", EventState.ACTIVE, Severity.CRITICAL), T0)
    for i in range(12):  # 68 °C for a minute: past temperature_high's 60 °C for 30 s
        ts = T0 + i * 5000
        sink.on_telemetry(detector, temp(i + 2, ts, 68.0), ts)
    sink.tick()
    sink.drain()
    assert [r.rule_id for r in incidents(sessions)] == ["heat"]


def test_an_alarm_that_flapped_inside_an_outage_and_is_still_on_is_one_open_incident(
    tmp_path: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    clock = FakeClock(T0 + 300_000)
    sink = build(make_ctx(tmp_path, engine, sessions, clock))
    sink.on_event(SENSOR, smoke(1, T0, hist=True), T0 + 300_000)
    sink.on_event(SENSOR, smoke(2, T0 + 20_000, active=False, hist=True), T0 + 300_000)
    sink.on_event(SENSOR, smoke(3, T0 + 40_000, hist=True), T0 + 300_000)  # back on, and still on
    clock.ms += int(HIST_SETTLE_S * 1000)
    sink.release_held()
    sink.drain()
    [row] = incidents(sessions)
    assert (row.state, row.opened_ms, row.flap_count) == ("open", T0, 1)
    assert row.group_id is not None  # dispatched: it is on now
