"""Device registry: health from status/LWT, heartbeat staleness, epochs, flap damping, persistence."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from edge.wire import DeviceKind, DeviceState, Status
from hub.devices.registry import DeviceRegistry, StatusOutcome
from hub.ingest.sinks import DeviceRef
from hub.metrics import IngestStats

T0 = 1_800_000_000_000


@pytest.fixture
def sessions(state_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return state_sessions


def _status(state: DeviceState, epoch: int, interval_s: float | None = 10.0, ts: int = T0) -> Status:
    grid = "110101001001001"
    return Status(state=state, epoch=epoch, ts=ts, kind=DeviceKind.SENSOR, grid=grid, interval_s=interval_s)


def _registry(sessions: sessionmaker[Session], **kw: float) -> tuple[DeviceRegistry, list[tuple[str, str, str]]]:
    reg = DeviceRegistry(sessions, IngestStats(), **kw)  # type: ignore[arg-type]
    changes: list[tuple[str, str, str]] = []

    def listener(ref: DeviceRef, old: str, new: str, _at: int) -> None:
        changes.append((ref.device_id, old, new))

    reg.add_listener(listener)
    return reg, changes


def test_birth_stale_and_lwt(sessions: sessionmaker[Session]) -> None:
    reg, changes = _registry(sessions)
    rec = reg.ensure("s", "d1")
    assert reg.apply_status(rec, _status(DeviceState.ONLINE, 1), T0) is StatusOutcome.APPLIED
    reg.evaluate(T0 + 29_000)  # 3 x 10 s heartbeat not yet over
    reg.touch(rec, T0 + 29_000, 1)
    reg.evaluate(T0 + 59_000 + 1)
    assert rec.state == "stale"
    reg.touch(rec, T0 + 60_000, 2)
    assert rec.state == "online"
    assert reg.apply_status(rec, _status(DeviceState.OFFLINE, 1), T0 + 61_000) is StatusOutcome.APPLIED
    assert changes == [("d1", "unknown", "online"), ("d1", "online", "stale"), ("d1", "stale", "online"),
                       ("d1", "online", "offline")]  # fmt: skip
    assert reg.health_counts() == {"online": 0, "stale": 0, "offline": 1, "unknown": 0}


def test_staleness_is_held_after_a_start(sessions: sessionmaker[Session]) -> None:
    reg, changes = _registry(sessions)
    rec = reg.ensure("s", "d1")
    reg.apply_status(rec, _status(DeviceState.ONLINE, 1), T0)
    reg.hold_staleness(T0 + 100_000)
    reg.evaluate(T0 + 99_999)  # long past 3 heartbeats, but the hub just started
    assert rec.state == "online"
    reg.evaluate(T0 + 100_000)
    assert rec.state == "stale" and changes[-1] == ("d1", "online", "stale")


def test_late_lwt_of_older_epoch_is_ignored(sessions: sessionmaker[Session]) -> None:
    reg, _ = _registry(sessions)
    rec = reg.ensure("s", "d1")
    reg.apply_status(rec, _status(DeviceState.ONLINE, 5, ts=T0 + 100), T0)
    # the LWT of session 4 was built when session 4 connected: before session 5's birth
    assert reg.apply_status(rec, _status(DeviceState.OFFLINE, 4, ts=T0 + 50), T0 + 1) is StatusOutcome.STALE
    assert rec.state == "online" and rec.epoch == 5 and reg.stats.stale_status == 1
    assert reg.apply_status(rec, _status(DeviceState.OFFLINE, 5, ts=T0 + 100), T0 + 2) is StatusOutcome.APPLIED
    assert rec.state == "offline"
    assert reg.apply_status(rec, _status(DeviceState.ONLINE, 6, ts=T0 + 200), T0 + 3) is StatusOutcome.APPLIED
    assert rec.state == "online"


def test_epoch_started_over_is_a_reset_not_stale(sessions: sessionmaker[Session]) -> None:
    reg, _ = _registry(sessions)
    rec = reg.ensure("s", "d1")
    reg.apply_status(rec, _status(DeviceState.ONLINE, 9, ts=T0), T0)
    reg.touch(rec, T0, 500)
    # reflashed device: epoch 1 again, but its birth is newer than anything of epoch 9
    assert reg.apply_status(rec, _status(DeviceState.ONLINE, 1, ts=T0 + 60_000), T0 + 60_000) is StatusOutcome.RESET
    assert (rec.epoch, rec.last_seq, rec.state, reg.stats.epoch_resets) == (1, None, "online", 1)


def test_flapping_is_damped_then_settles(sessions: sessionmaker[Session]) -> None:
    reg, changes = _registry(sessions, flap_window_s=10, flap_max_changes=3)
    rec = reg.ensure("s", "d1")
    for i in range(10):
        state = DeviceState.ONLINE if i % 2 == 0 else DeviceState.OFFLINE
        reg.apply_status(rec, _status(state, 1), T0 + i * 100)
    assert len(changes) == 3  # unknown->online, online->offline, offline->online
    assert rec.pending and rec.flaps_suppressed > 0 and reg.stats.flaps_suppressed == rec.flaps_suppressed
    assert rec.raw_state == "offline" and rec.state == "online"
    reg.evaluate(T0 + 5_000)  # still inside the window: held, not counted again
    assert len(changes) == 3
    suppressed = rec.flaps_suppressed
    reg.evaluate(T0 + 10_001)
    assert changes[-1] == ("d1", "online", "offline") and not rec.pending
    assert rec.flaps_suppressed == suppressed


def test_flush_and_load_round_trip(sessions: sessionmaker[Session]) -> None:
    reg, _ = _registry(sessions)
    rec = reg.ensure("s", "d1")
    reg.apply_status(rec, _status(DeviceState.ONLINE, 3), T0)
    reg.touch(rec, T0 + 5, 42)
    reg.update_latest(rec, T0 + 5, {"temp_c": 21.5})
    reg.update_latest(rec, T0 + 1, {"temp_c": 99.0})  # older reading (replayed): does not win
    assert reg.flush() == 1
    reg.update_latest(rec, T0 + 6, {"rh_pct": 40})
    reg.touch(rec, T0 + 6, 43)
    assert reg.flush() == 1 and reg.flush() == 0
    again, _ = _registry(sessions)
    assert again.load() == 1
    d = again.get_public("d1")
    assert d is not None
    assert (d["kind"], d["epoch"], d["last_seq"], d["state"]) == ("sensor", 3, 43, "online")
    assert d["latest"] == {"temp_c": 21.5, "rh_pct": 40}
