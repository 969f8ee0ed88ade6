"""One outbox suite run against every backend (memory and SQLite)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import wire
from edge.outbox import MemoryOutbox, Outbox, SqliteOutbox, read_stats
from edge.outbox.base import MessageFactory

T0 = 1_763_900_000_000

Factory = Callable[..., Outbox]


def telemetry(value: float = 1.0, ts: int = T0) -> MessageFactory:
    return lambda seq: wire.Telemetry(seq=seq, ts=ts, points=(wire.Point(ts, {"v": value}),))


def event(name: str = "smoke", ts: int = T0) -> MessageFactory:
    return lambda seq: wire.Event(
        seq=seq, ts=ts, event_id=f"{name}-{seq}", type=name, state=wire.EventState.ACTIVE, severity=wire.Severity.MAJOR
    )


TEL_SIZE = len(wire.encode(telemetry()(1)))
EVENT_SIZE = len(wire.encode(event()(1)))


@pytest.fixture(params=["memory", "sqlite"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    opened: list[Outbox] = []

    def factory(**kwargs: object) -> Outbox:
        if request.param == "memory":
            box: Outbox = MemoryOutbox(**kwargs)  # type: ignore[arg-type]
        else:
            box = SqliteOutbox(tmp_path / "outbox.db", **kwargs)  # type: ignore[arg-type]
        opened.append(box)
        return box

    yield factory
    for box in opened:
        with contextlib.suppress(Exception):
            box.close()


def decode(item_channel: wire.Channel, payload: bytes) -> wire.Message:
    return wire.decode(item_channel, payload)


def test_seq_assigned_in_order_and_encoded_inside(make: Factory) -> None:
    box = make()
    seqs = box.enqueue([telemetry(1), event(), telemetry(2)], T0)
    assert seqs == [1, 2, 3]
    assert box.enqueue([telemetry(3)], T0) == [4]
    items = box.reserve(10)
    assert [i.seq for i in items] == [1, 2, 3, 4]
    tel, ev = wire.Channel.TELEMETRY, wire.Channel.EVENT
    assert [i.channel for i in items] == [tel, ev, tel, tel]
    for item in items:
        msg = decode(item.channel, item.payload)
        assert isinstance(msg, wire.Telemetry | wire.Event)
        assert msg.seq == item.seq
    assert [i.is_event for i in items] == [False, True, False, False]


def test_reserve_ack_release(make: Factory) -> None:
    box = make()
    box.enqueue([telemetry(float(i)) for i in range(10)], T0)
    first = box.reserve(4)
    assert [i.seq for i in first] == [1, 2, 3, 4]
    second = box.reserve(4)
    assert [i.seq for i in second] == [5, 6, 7, 8]
    box.ack([1, 2, 5], T0 + 1)
    stats = box.stats()
    assert (stats.pending, stats.inflight, stats.sent) == (7, 5, 3)
    box.release()  # connection lost: 3, 4, 6, 7, 8 are pending again
    again = box.reserve(100)
    assert [i.seq for i in again] == [3, 4, 6, 7, 8, 9, 10]
    box.ack([i.seq for i in again], T0 + 2)
    assert box.stats().pending == 0
    assert box.reserve(10) == []
    # an ack for something not in flight changes nothing
    box.ack([1, 99], T0 + 3)
    assert box.stats().sent == 10


def test_epoch_increments_per_session(make: Factory) -> None:
    box = make()
    assert box.begin_session() == 1
    assert box.begin_session() == 2
    assert box.epoch == 2
    assert box.stats().epoch == 2


def test_evicts_oldest_telemetry_never_events_and_reports_gap(make: Factory) -> None:
    box = make(max_bytes=TEL_SIZE * 10 + EVENT_SIZE + 20)
    box.enqueue([event("smoke")], T0)  # seq 1
    box.enqueue([telemetry(float(i)) for i in range(10)], T0)  # seqs 2..11
    assert box.stats().evicted_total == 0
    box.enqueue([telemetry(99.0) for _ in range(5)], T0 + 1000)  # seqs 12..16 -> evict oldest telemetry
    stats = box.stats()
    assert stats.evicted_total >= 5
    items = box.reserve(1000)
    by_channel: dict[wire.Channel, list[int]] = {}
    for item in items:
        by_channel.setdefault(item.channel, []).append(item.seq)
    assert by_channel[wire.Channel.EVENT] == [1]
    gaps = [decode(i.channel, i.payload) for i in items if i.channel is wire.Channel.GAP]
    assert len(gaps) == 1
    gap = gaps[0]
    assert isinstance(gap, wire.GapNotice)
    assert gap.reason == "evicted"
    lost = set(range(gap.first, gap.last + 1))
    assert gap.first == 2  # the oldest telemetry went first
    present = {i.seq for i in items}
    assert lost.isdisjoint(present)
    # every seq ever assigned is either stored or reported lost
    assert present | lost == set(range(1, box.stats().last_seq + 1))
    assert gap.seq == box.stats().last_seq  # the notice is created when the publisher next takes items


def test_full_of_events_refuses_telemetry_keeps_events(make: Factory) -> None:
    box = make(max_bytes=300)
    box.enqueue([event(f"e{i}") for i in range(5)], T0)  # over the bound already; events are always kept
    seqs = box.enqueue([telemetry(1.0)], T0)
    stats = box.stats()
    assert stats.evicted_total == 1
    items = box.reserve(100)
    assert [i.seq for i in items if i.channel is wire.Channel.EVENT] == [1, 2, 3, 4, 5]
    gaps = [decode(i.channel, i.payload) for i in items if i.channel is wire.Channel.GAP]
    assert [(g.first, g.last) for g in gaps if isinstance(g, wire.GapNotice)] == [(seqs[0], seqs[0])]


def test_consecutive_evictions_merge_into_one_gap_notice(make: Factory) -> None:
    box = make(max_bytes=TEL_SIZE * 5)
    box.enqueue([telemetry(float(i)) for i in range(5)], T0)
    for i in range(20):
        box.enqueue([telemetry(float(i))], T0 + i)
    items = box.reserve(1000)
    gaps = [decode(i.channel, i.payload) for i in items if i.channel is wire.Channel.GAP]
    assert len(gaps) == 1  # merged into one notice, not one per eviction
    lost = sum(g.last - g.first + 1 for g in gaps if isinstance(g, wire.GapNotice))
    assert lost == box.stats().evicted_total


def test_in_flight_items_are_not_evicted(make: Factory) -> None:
    box = make(max_bytes=TEL_SIZE * 4)
    box.enqueue([telemetry(float(i)) for i in range(4)], T0)
    flying = box.reserve(2)
    box.enqueue([telemetry(5.0)], T0)
    remaining = {i.seq for i in box.reserve(100)}
    box.ack([i.seq for i in flying], T0)
    assert box.stats().sent == 2  # the in-flight ones were delivered, not evicted
    assert 3 not in remaining  # seq 3 was the oldest evictable one


def test_replay_window_bounded_by_bytes_and_hours(make: Factory) -> None:
    box = make(replay_hours=1.0, replay_max_bytes=TEL_SIZE * 5 + 5)
    box.enqueue([telemetry(float(i)) for i in range(10)], T0)
    box.ack([i.seq for i in box.reserve(10)], T0)
    kept = box.replay(1, 10)
    assert [i.seq for i in kept] == [6, 7, 8, 9, 10]  # byte bound keeps the newest
    assert box.replay(7, 8)[0].payload == wire.encode(telemetry(6.0)(7))
    box.enqueue([telemetry(1.0)], T0)
    box.ack([i.seq for i in box.reserve(10)], T0 + 3_000_000)
    assert [i.seq for i in box.replay(1, 100)] == [7, 8, 9, 10, 11]
    assert box.prune(T0 + 3_700_000) == 4  # 7..10 are older than an hour
    assert [i.seq for i in box.replay(1, 100)] == [11]
    assert box.stats().sent == 1


def test_command_ids_remembered(make: Factory) -> None:
    box = make()
    assert box.remember_command("cmd-1", T0)
    assert not box.remember_command("cmd-1", T0 + 1000)
    assert box.remember_command("cmd-2", T0)
    assert box.remember_command("cmd-1", T0 + 25 * 3600 * 1000)  # forgotten after a day


def test_sqlite_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    box = SqliteOutbox(path)
    assert box.begin_session() == 1
    box.enqueue([telemetry(float(i)) for i in range(5)], T0)
    box.enqueue([event()], T0)
    box.reserve(3)  # in flight when the process dies
    box.ack([1], T0)
    box.remember_command("c1", T0)
    box.close()

    box = SqliteOutbox(path)
    assert box.begin_session() == 2
    assert [i.seq for i in box.reserve(100)] == [2, 3, 4, 5, 6]
    assert box.enqueue([telemetry()], T0) == [7]
    assert not box.remember_command("c1", T0)
    box.close()
    stats = read_stats(path)
    assert (stats.epoch, stats.last_seq, stats.pending, stats.sent) == (2, 7, 6, 1)


def test_sqlite_seq_never_reused_after_everything_deleted(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    box = SqliteOutbox(path, replay_max_bytes=0)
    box.enqueue([telemetry() for _ in range(3)], T0)
    box.ack([i.seq for i in box.reserve(3)], T0)
    assert box.stats().sent == 0
    box.close()
    box = SqliteOutbox(path)
    assert box.enqueue([telemetry()], T0) == [4]
    box.close()


ops = st.lists(
    st.one_of(
        st.tuples(st.just("tel"), st.integers(1, 6)),
        st.tuples(st.just("event"), st.integers(1, 2)),
        st.tuples(st.just("reserve"), st.integers(1, 8)),
        st.tuples(st.just("ack"), st.integers(0, 8)),
        st.tuples(st.just("release"), st.just(0)),
    ),
    max_size=40,
)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=ops)
def test_nothing_lost_silently(backend: str, script: list[tuple[str, int]]) -> None:
    """Under any sequence of operations: events never evicted; every seq is delivered, pending or in a gap."""
    with tempfile.TemporaryDirectory() as tmp:
        box: Outbox = (
            MemoryOutbox(max_bytes=TEL_SIZE * 8)
            if backend == "memory"
            else SqliteOutbox(Path(tmp) / "o.db", max_bytes=TEL_SIZE * 8)
        )
        events: set[int] = set()
        delivered: set[int] = set()
        flying: list[int] = []
        for op, n in script:
            if op == "tel":
                box.enqueue([telemetry() for _ in range(n)], T0)
            elif op == "event":
                events.update(box.enqueue([event() for _ in range(n)], T0))
            elif op == "reserve":
                flying.extend(i.seq for i in box.reserve(n))
            elif op == "ack":
                done, flying = flying[:n], flying[n:]
                box.ack(done, T0)
                delivered.update(done)
            else:
                box.release()
                flying = []
        box.release()
        rest = box.reserve(100_000)
        pending = {i.seq for i in rest}
        lost: set[int] = set()
        for item in rest:
            if item.channel is wire.Channel.GAP:
                gap = wire.decode(item.channel, item.payload)
                assert isinstance(gap, wire.GapNotice)
                lost.update(range(gap.first, gap.last + 1))
        # gap notices already delivered are part of `delivered`; recover their ranges too
        for item in box.replay(1, 100_000):
            if item.channel is wire.Channel.GAP:
                gap = wire.decode(item.channel, item.payload)
                assert isinstance(gap, wire.GapNotice)
                lost.update(range(gap.first, gap.last + 1))
        last = box.stats().last_seq
        assert events <= pending | delivered, "an event was evicted"
        assert lost.isdisjoint(events)
        assert lost.isdisjoint(delivered)
        assert pending | delivered | lost == set(range(1, last + 1))
        assert box.stats().evicted_total == len(lost)
        box.close()
