"""Gap manager: resend after the grace, data-loss records after the timeout or on a device's notice."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker

from edge.wire import Command, GapNotice
from hub.bus import EventBus
from hub.devices.registry import DeviceRecord
from hub.ingest.gaps import GapManager
from hub.ingest.sinks import DeviceRef
from hub.metrics import IngestStats

T0 = 1_800_000_000_000


def test_resend_then_loss_then_declared(state_sessions: sessionmaker[Session]) -> None:
    bus = EventBus()
    stats = IngestStats()
    gaps = GapManager(state_sessions, stats, bus, threading.RLock(), grace_s=1, timeout_s=5)
    sent: list[tuple[str, Command]] = []

    def send(ref: DeviceRef, cmd: Command) -> None:
        sent.append((ref.device_id, cmd))

    gaps.send_command = send
    rec = DeviceRecord("d1", "s1")
    for seq in (1, 2, 6):  # 3..5 missing
        assert gaps.observe(rec, seq, T0)
    assert not gaps.observe(rec, 2, T0)
    gaps.sweep(T0 + 500)
    assert sent == []
    gaps.sweep(T0 + 1001)
    assert [(d, c.op, dict(c.args)) for d, c in sent] == [("d1", "resend", {"first": 3, "last": 5})]
    assert sent[0][1].expires is None  # judged on the device's clock, an expiry would refuse skewed devices
    assert gaps.observe(rec, 4, T0 + 2000)  # a resent message fills the middle
    gaps.sweep(T0 + 3000)
    assert len(sent) == 1  # asked once per gap
    assert gaps.open_gaps() == [
        {"device_id": "d1", "first": 3, "last": 3, "opened_ms": T0, "resend_ms": T0 + 1001},
        {"device_id": "d1", "first": 5, "last": 5, "opened_ms": T0, "resend_ms": T0 + 1001},
    ]
    gaps.sweep(T0 + 5001)
    total, items = gaps.list_page()
    assert total == 2 and sorted((i["first"], i["cause"]) for i in items) == [(3, "unfilled"), (5, "unfilled")]
    assert gaps.open_gaps() == []
    gaps.observe(rec, 7, T0 + 6000)
    gaps.declare(rec, GapNotice(seq=7, ts=T0, first=8, last=9, reason="evicted"), T0 + 6000)
    gaps.flush()
    total, items = gaps.list_page(device="d1", limit=1)
    assert total == 3 and (items[0]["first"], items[0]["last"], items[0]["cause"]) == (8, 9, "declared")
    assert stats.lost_seqs == 4 and stats.gaps["opened"] == 1 and stats.gaps["filled"] == 1
    assert [e.data["count"] for e in bus.history if e.kind == "data_loss"] == [1, 1, 2]
    assert gaps.observe(rec, 10, T0 + 7000) and gaps.open_gaps() == []  # 8..9 declared: no gap


def test_a_gap_notice_redelivered_after_a_restart_is_not_recorded_twice(
    state_sessions: sessionmaker[Session],
) -> None:
    """The notice's loss record was flushed but its seq not acknowledged when the hub was killed."""
    lock = threading.RLock()
    rec = DeviceRecord("d1", "s1")
    notice = GapNotice(seq=7, ts=T0, first=3, last=5, reason="evicted")
    first = GapManager(state_sessions, IngestStats(), EventBus(), lock)
    first.declare(rec, notice, T0)
    first.declare(rec, notice, T0)  # again before the flush: the queued record counts too
    first.flush()
    again = GapManager(state_sessions, IngestStats(), EventBus(), lock)
    assert again.load_open({"d1": rec}) == 0  # the restart path: no open gaps, the recent declarations
    again.declare(rec, notice, T0 + 1000)
    assert again.stats.lost_seqs == 0 and again.flush() == 0
    assert again.list_page()[0] == 1
    # A different range, or the same range for another reason, is the device's word on a new loss.
    again.declare(rec, GapNotice(seq=8, ts=T0, first=3, last=6, reason="evicted"), T0 + 2000)
    again.declare(rec, GapNotice(seq=9, ts=T0, first=3, last=5, reason="disk full"), T0 + 2000)
    again.flush()
    total, items = again.list_page()
    assert total == 3
    assert sorted((i["first"], i["last"], i["detail"]) for i in items) == [
        (3, 5, "telemetry: disk full"),
        (3, 5, "telemetry: evicted"),
        (3, 6, "telemetry: evicted"),
    ]


def test_open_gaps_survive_a_restart(state_sessions: sessionmaker[Session]) -> None:
    lock = threading.RLock()
    gaps = GapManager(state_sessions, IngestStats(), EventBus(), lock)
    rec = DeviceRecord("d1", "s1")
    for seq in (1, 5, 9):  # 2..4 and 6..8 open
        gaps.observe(rec, seq, T0)
    rec.last_seq = 5  # the registry's last flush lagged behind
    assert gaps.save_open() and not gaps.save_open()  # written once, then nothing changed
    again = GapManager(state_sessions, IngestStats(), EventBus(), lock)
    assert again.load_open({"d1": rec}) == 2
    assert [(g["first"], g["last"]) for g in again.open_gaps()] == [(2, 4), (6, 8)]
    assert again.observe(rec, 3, T0 + 1)  # a late message still fills its gap after the restart
    assert not again.observe(rec, 9, T0 + 1) and not again.observe(rec, 5, T0 + 1)  # seen before: duplicates
    assert again.observe(rec, 10, T0 + 1) and again.stats.gaps["opened"] == 0
    again.sweep(T0 + 60_000)
    assert again.list_page()[0] == 3  # 2, 4 and 6..8 timed out into loss records


def test_with_safe_seqs_a_restart_resumes_after_the_safe_seq_not_the_processed_one(
    state_sessions: sessionmaker[Session],
) -> None:
    """Saved every second, ``high`` is what was processed; after a kill -9 the messages above the safe
    seq come again (never acknowledged) and must not be dropped as duplicates."""
    lock = threading.RLock()
    gaps = GapManager(state_sessions, IngestStats(), EventBus(), lock)
    rec = DeviceRecord("d1", "s1")
    for seq in (1, 5, 9, 10, 11):  # 2..4 and 6..8 open; processed up to 11
        gaps.observe(rec, seq, T0)
    assert gaps.save_open()
    rec.last_seq = 5  # safe: only seqs up to 5 had durable points when the hub died
    again = GapManager(state_sessions, IngestStats(), EventBus(), lock)
    assert again.load_open({"d1": rec}, safe_seqs=True) == 1  # 6..8 was opened by the unsafe 9: dropped
    assert [(g["first"], g["last"]) for g in again.open_gaps()] == [(2, 4)]
    for seq in (9, 10, 11):  # delivered again by the broker: new, not duplicates
        assert again.observe(rec, seq, T0 + 1)
    assert [(g["first"], g["last"]) for g in again.open_gaps()] == [(2, 4), (6, 8)]  # reopened by 9
