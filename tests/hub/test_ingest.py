"""Ingest processing fed straight in (no broker): decode, dedup, dead letter, sinks, requeue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from sqlalchemy.orm import Session, sessionmaker

from edge import wire
from edge.wire import Channel, DeviceKind, DeviceState, PayloadError, Point, Status, Telemetry
from hub.ingest.deadletter import DeadLetterError, DeadLetterStore
from hub.ingest.pipeline import Ingest, ingest_filters, standalone_ingest
from hub.metrics import IngestStats
from hub.series.base import SeriesPoint

T0 = 1_800_000_000_000
SITE, DEV = "site-a", "cam-1"


@dataclass
class Core:
    ingest: Ingest
    points: list[SeriesPoint]
    deadletters: DeadLetterStore
    stats: IngestStats
    sink: RecordingSink


@dataclass
class RecordingSink:
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def on_status(self, device: Any, status: Status, received_ms: int) -> None:
        self.calls.append(("status", status.state))

    def on_telemetry(self, device: Any, msg: Telemetry, received_ms: int) -> None:
        self.calls.append(("telemetry", msg.seq))

    def on_event(self, device: Any, msg: wire.Event, received_ms: int) -> None:
        raise RuntimeError("a broken sink")

    def on_health(self, device: Any, old: str, new: str, at_ms: int) -> None:
        self.calls.append(("health", new))


@pytest.fixture
def core(state_sessions: sessionmaker[Session]) -> Core:
    points: list[SeriesPoint] = []

    def collect(items: Sequence[SeriesPoint | str]) -> None:
        assert all(isinstance(item, SeriesPoint) for item in items)  # lines only with encode_lines
        points.extend(cast(Sequence[SeriesPoint], items))

    sink = RecordingSink()
    ingest = standalone_ingest(state_sessions, submit_points=collect, root="gs", sinks=[sink], deadletter_cap=20)
    return Core(ingest, points, ingest.deadletters, ingest.stats, sink)


def _t(channel: Channel) -> str:
    return wire.topic(SITE, DEV, channel)


def _birth() -> bytes:
    return wire.encode(Status(DeviceState.ONLINE, 1, T0, kind=DeviceKind.CAMERA, grid="110101001001001"))


def _tele(seq: int, **metrics: float) -> bytes:
    return wire.encode(Telemetry(seq, T0 + seq, (Point(T0 + seq, metrics),)))


def test_points_follow_the_schema_and_duplicates_are_dropped(core: Core) -> None:
    assert core.ingest.handle(_t(Channel.STATUS), _birth(), T0)
    for seq in (1, 2, 2, 1):
        core.ingest.handle(_t(Channel.TELEMETRY), _tele(seq, fps=12.5), T0 + 10)
    assert [p.ts_ms for p in core.points] == [T0 + 1, T0 + 2]
    p = core.points[0]
    assert p.measurement == "camera" and dict(p.tags) == {"site": SITE, "device": DEV, "grid": "110101001001001"}
    assert dict(p.fields) == {"fps": 12.5}
    assert core.stats.duplicates == 2
    assert core.sink.calls == [("status", DeviceState.ONLINE), ("telemetry", 1), ("telemetry", 2)]  # no on_health:
    # health changes reach sinks through the Hub's registry listener, tested end to end
    assert core.stats.messages["telemetry"] == 4


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("gs/v1/site-a/cam-1/telemetry", b"{not json", "bad_json"),
        ("gs/v1/site-a/cam-1/telemetry", b"x" * (300 * 1024), "too_large"),
        ("gs/v1/site-a/cam-1/telemetry", b'{"v":2,"seq":1}', "unknown_version"),
        ("gs/v1/site-a/cam-1/telemetry", b'{"v":1,"seq":1,"ts":1}', "bad_timestamp"),
        ("gs/v1/site-a/cam-1/bogus", b"{}", "bad_channel"),
        ("gs/v9/site-a/cam-1/status", b"{}", "unknown_version"),
        ("gs/v1/site-a/cam-1/snapshot/ev-1", b"not a jpeg", "not_jpeg"),
        ("gs/v1/site-a/cam-1/telemetry", b"\xff\xfe", "bad_utf8"),
    ],
)
def test_bad_messages_are_dead_lettered_with_reason(core: Core, name: str, payload: bytes, reason: str) -> None:
    assert not core.ingest.handle(name, payload, T0)
    total, rows = core.deadletters.list_page()
    assert total == 1 and rows[0].reason == reason and rows[0].topic == name
    assert rows[0].payload == payload[:65536] and rows[0].payload_size == len(payload)
    assert core.ingest.handle(_t(Channel.TELEMETRY), _tele(1, fps=1.0), T0)  # ingest goes on


def test_broken_sink_is_counted_not_fatal(core: Core) -> None:
    event = wire.Event(1, T0, "ev-1", "tamper", wire.EventState.ACTIVE, wire.Severity.MAJOR)
    assert core.ingest.handle(_t(Channel.EVENT), wire.encode(event), T0)
    assert core.stats.sink_errors == 1


def test_requeue_after_fix_and_refusal(core: Core) -> None:
    core.ingest.handle(_t(Channel.TELEMETRY), b'{"v":1,"seq":5,"ts":1}', T0)
    core.ingest.handle(_t(Channel.TELEMETRY), b"x" * 70_000, T0)
    _, rows = core.deadletters.list_page()
    big, small = rows
    with pytest.raises(PayloadError):  # unchanged payload is still refused and stays
        core.deadletters.requeue(small.id, core.ingest.process, T0)
    assert core.deadletters.list_page()[0] == 2
    with pytest.raises(DeadLetterError) as err:
        core.deadletters.requeue(big.id, core.ingest.process, T0)
    assert err.value.code == "not_requeueable"
    core.deadletters.requeue(small.id, core.ingest.process, T0, payload=_tele(5, fps=3.0))
    assert core.deadletters.list_page()[0] == 1 and core.points[-1].fields == {"fps": 3.0}
    with pytest.raises(DeadLetterError):
        core.deadletters.get(small.id)


def test_dead_letter_cap_purges_oldest_and_counts(core: Core) -> None:
    for i in range(25):
        core.ingest.handle(_t(Channel.TELEMETRY), f"bad {i}".encode(), T0 + i)
    total, rows = core.deadletters.list_page(limit=5)
    assert total == 20 and rows[0].payload == b"bad 24"
    assert core.stats.deadletters_purged == 5
    assert core.deadletters.list_page(since_ms=T0 + 20)[0] == 5
    assert core.deadletters.purge(before_ms=T0 + 10) == 5
    assert core.deadletters.purge(reason="bad_json") == 15


def test_filters_share_everything_but_status() -> None:
    assert ingest_filters("gs", None)[0] == "gs/v1/+/+/status"
    shared = ingest_filters("gs", "hubs")
    assert shared[0] == "gs/v1/+/+/status"
    assert shared[1:] == [
        "$share/hubs/gs/v1/+/+/telemetry",
        "$share/hubs/gs/v1/+/+/event",
        "$share/hubs/gs/v1/+/+/gap",
        "$share/hubs/gs/v1/+/+/snapshot/+",
        "$share/hubs/gs/v1/+/+/cmd/ack",
    ]


def test_device_that_starts_over_is_not_deduplicated_into_silence(core: Core) -> None:
    birth = Status(DeviceState.ONLINE, 7, T0, kind=DeviceKind.CAMERA)
    core.ingest.handle(_t(Channel.STATUS), wire.encode(birth), T0)
    for seq in (500, 501, 505):  # 502..504 open
        core.ingest.handle(_t(Channel.TELEMETRY), _tele(seq, fps=1.0), T0)
    reborn = Status(DeviceState.ONLINE, 1, T0 + 60_000, kind=DeviceKind.CAMERA)
    core.ingest.handle(_t(Channel.STATUS), wire.encode(reborn), T0 + 60_000)
    assert core.ingest.handle(_t(Channel.TELEMETRY), _tele(0, fps=2.0), T0 + 60_001)
    assert core.ingest.handle(_t(Channel.TELEMETRY), _tele(1, fps=2.0), T0 + 60_002)
    assert len(core.points) == 5 and core.stats.duplicates == 0
    total, items = core.ingest.gaps.list_page()
    assert total == 1 and (items[0]["first"], items[0]["last"], items[0]["cause"]) == (502, 504, "reset")
