"""SeriesWriter logic against a scripted store: batching, bisecting, retries, spool, alerts."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from hub.series.base import SeriesPoint, StoreError
from hub.series.embedded import EmbeddedStore
from hub.series.lineproto import encode_point
from hub.series.writer import SeriesWriter
from simulators.servers import wait_until
from tests.hub.series.conftest import SmallDisk
from tests.hub.series.fakes import ScriptedStore

T0 = 1_700_000_000_000


def pts(n: int, start: int = 0, device: str = "d1") -> list[SeriesPoint]:
    return [
        SeriesPoint("sensor", {"device": device, "site": "s"}, {"v": float(i)}, T0 + i) for i in range(start, start + n)
    ]


class Recorder:
    def __init__(self) -> None:
        self.bad: list[tuple[str, str]] = []
        self.alerts: list[tuple[str, str]] = []

    def on_bad_line(self, line: str, reason: str) -> None:
        self.bad.append((line, reason))

    def on_alert(self, kind: str, message: str) -> None:
        self.alerts.append((kind, message))


def make(store: object, tmp_path: Path, rec: Recorder, **kw: object) -> SeriesWriter:
    writer = SeriesWriter(
        store,  # type: ignore[arg-type]
        tmp_path / "spool",
        on_bad_line=rec.on_bad_line,
        on_alert=rec.on_alert,
        base_backoff_s=0.01,
        max_backoff_s=0.05,
        **kw,  # type: ignore[arg-type]
    )
    writer.start()
    return writer


def test_batches_by_size_in_order(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    writer = make(store, tmp_path, rec, batch_points=100, flush_interval_s=5.0)
    points = pts(1000)
    for i in range(0, 1000, 7):
        writer.submit(points[i : i + 7])
    wait_until(lambda: len(store.lines) == 1000, 10, what="size-triggered batches")
    assert store.lines == [encode_point(p) for p in points]
    assert all(size == 100 for _, size in store.calls)
    assert writer.stats.batches == 10 and writer.stats.written_points == 1000
    writer.stop()


def test_batches_by_time(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    writer = make(store, tmp_path, rec, batch_points=10_000, flush_interval_s=0.05)
    writer.submit(pts(5))
    wait_until(lambda: len(store.lines) == 5, 5, what="time-triggered batch")
    assert writer.stats.pending_points == 0
    writer.stop()


def test_bad_lines_are_bisected_out_and_the_rest_written(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    writer = make(store, tmp_path, rec, batch_points=64)
    points = pts(64)
    points[37] = SeriesPoint("sensor", {"device": "poison"}, {"v": 1.0}, T0 + 37)
    points[50] = SeriesPoint("sensor", {"device": "d1"}, {"v": math.inf}, T0 + 50)
    writer.submit(points)
    assert writer.flush(5)
    assert len(store.lines) == 62
    assert [line for line, _ in rec.bad] == [
        "'sensor',device='d1' v=inf 1700000000050",
        encode_point(points[37]),
    ]
    assert rec.bad[0][1].startswith("not_finite")
    assert "field type conflict" in rec.bad[1][1]
    assert len(store.calls) <= 2 * 7 + 1  # a bisect, not one request per line
    assert writer.stats.dead_lines == 2
    writer.stop()


def test_retryable_failures_spool_then_replay_in_order(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    store.down = True
    writer = make(store, tmp_path, rec, batch_points=50, flush_interval_s=0.01)
    points = pts(500)
    for i in range(0, 500, 50):
        writer.submit(points[i : i + 50])
    wait_until(lambda: writer.stats.spooled_lines == 500, 10, what="everything spooled")
    assert store.lines == []
    assert "store_down" in {kind for kind, _ in rec.alerts}
    store.down = False
    assert writer.flush(10)
    assert store.lines == [encode_point(p) for p in points]
    stats = writer.stats
    assert stats.retries >= 1 and stats.spooled_batches == 0 and stats.spooled_bytes == 0
    writer.stop()


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    store.errors = [StoreError("slow down", retryable=True, retry_after_s=0.4, status=429)]
    writer = make(store, tmp_path, rec, batch_points=10)
    writer.submit(pts(10))
    assert writer.flush(5)
    (t_fail, _), (t_ok, _) = store.calls
    assert t_ok - t_fail >= 0.4
    assert len(store.lines) == 10
    writer.stop()


def test_spool_survives_a_restart(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    store.down = True
    writer = make(store, tmp_path, rec, batch_points=20)
    writer.submit(pts(100))
    assert not writer.flush(0.3)
    writer.stop(flush_timeout=0.1)
    assert writer.stats.spooled_lines == 100
    fresh = ScriptedStore()
    again = make(fresh, tmp_path, rec, batch_points=20)
    assert again.flush(5)
    assert fresh.lines == [encode_point(p) for p in pts(100)]
    again.stop()


def test_spool_high_alert_and_loud_drop(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    store.down = True
    writer = make(store, tmp_path, rec, batch_points=100, spool_max_bytes=64 * 1024)
    for i in range(0, 20_000, 100):
        writer.submit(pts(100, start=i))
    wait_until(lambda: writer.stats.spooled_lines + writer.stats.dropped_lines == 20_000, 20, what="spooled or dropped")
    kinds = [kind for kind, _ in rec.alerts]
    assert "spool_high" in kinds and "spool_dropped" in kinds
    stats = writer.stats
    assert stats.dropped_lines > 0 and stats.spooled_bytes <= 64 * 1024
    store.down = False
    assert writer.flush(10)
    assert len(store.lines) + writer.stats.dropped_lines == 20_000
    assert store.lines[-1] == encode_point(pts(1, start=19_999)[0])  # the newest data is kept
    writer.stop()


def test_config_errors_are_spooled_and_alerted_not_dead_lettered(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    store.errors = [StoreError("database not found", retryable=True, status=404)]
    writer = make(store, tmp_path, rec, batch_points=10)
    writer.submit(pts(10))
    assert writer.flush(5)
    assert len(store.lines) == 10 and rec.bad == []
    assert "store_rejected" in [kind for kind, _ in rec.alerts]
    writer.stop()


def test_embedded_store_path_with_spool_replay(tmp_path: Path) -> None:
    store, rec = EmbeddedStore(tmp_path / "s.sqlite3"), Recorder()
    failing = {"left": 2}
    real_write = store.write

    def flaky(points: Sequence[SeriesPoint]) -> None:
        if failing["left"]:
            failing["left"] -= 1
            raise StoreError("database is locked", retryable=True)
        real_write(points)

    store.write = flaky  # type: ignore[method-assign]
    writer = make(store, tmp_path, rec, batch_points=100)
    writer.submit(pts(300))
    writer.submit([SeriesPoint("sensor", {"device": "d1"}, {"v": math.nan}, T0 + 9999)])
    assert writer.flush(10)
    assert store.count("sensor") == 300
    assert len(rec.bad) == 1 and "not_finite" in rec.bad[0][1]
    writer.stop()
    store.close()


def test_submit_is_cheap(tmp_path: Path) -> None:
    """Not a benchmark: a store that hangs must not make submit wait for it."""
    store, rec = ScriptedStore(), Recorder()
    writer = make(store, tmp_path, rec, batch_points=10)
    hold = store.lock
    hold.acquire()  # every write now blocks inside the store
    try:
        started = time.monotonic()
        for _ in range(100):
            writer.submit(pts(10))
        assert time.monotonic() - started < 1.0
    finally:
        hold.release()
    assert writer.flush(10)
    writer.stop()


def test_ints_are_written_as_floats_so_field_types_stay_stable(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    writer = make(store, tmp_path, rec, batch_points=10)
    writer.submit([SeriesPoint("m", {"device": "d"}, {"n": 20, "ok": True, "x": 20.5}, T0)])
    assert writer.flush(5)
    assert store.lines == ["m,device=d n=20.0,ok=true,x=20.5 1700000000000"]
    writer.stop()


def test_slow_store_spills_to_the_spool_instead_of_growing_memory(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    writer = make(store, tmp_path, rec, batch_points=100, max_pending_points=500)
    store.lock.acquire()  # the writer thread blocks inside its first write
    try:
        started = time.monotonic()
        for i in range(0, 3000, 100):
            writer.submit(pts(100, start=i))
        assert time.monotonic() - started < 3.0  # one short backpressure wait, then immediate spills
        stats = writer.stats
        assert stats.pending_points <= 500
        assert stats.spooled_lines >= 2000
    finally:
        store.lock.release()
    assert writer.flush(10)
    assert sorted(store.lines) == sorted(encode_point(p) for p in pts(3000))
    writer.stop()


def test_durable_through_tracks_written_or_spooled_submits(tmp_path: Path) -> None:
    store, rec = ScriptedStore(), Recorder()
    store.lock.acquire()  # first write blocks
    writer = make(store, tmp_path, rec, batch_points=10, flush_interval_s=0.01)
    try:
        first = writer.submit(pts(10))
        second = writer.submit(pts(10, start=10))
        assert second == first + 1
        wait_until(lambda: len(store.calls) == 0 and writer.stats.pending_points == 10, 5, what="first batch in flight")
        assert writer.durable_through() < first
    finally:
        store.lock.release()
    assert writer.flush(5)
    assert writer.durable_through() == second
    store.down = True
    third = writer.submit(pts(10, start=20))
    wait_until(lambda: writer.durable_through() == third, 5, what="spooled submit counted as durable")
    assert writer.stats.spooled_lines == 10 and len(store.lines) == 20
    store.down = False
    assert writer.flush(5)
    writer.stop()


def test_a_full_disk_holds_batches_in_memory_unacknowledged_until_the_disk_takes_them(
    small_disk: SmallDisk,
) -> None:
    """Store down and the spool's disk full (a real tmpfs at ENOSPC): nothing is counted durable that is
    neither written nor spooled, it is said loudly, and everything arrives once the disk has room."""
    store, rec = ScriptedStore(), Recorder()
    store.down = True
    writer = make(store, small_disk.root, rec, batch_points=100, flush_interval_s=0.01)
    first = writer.submit(pts(100))
    wait_until(lambda: writer.durable_through() == first, 5, what="first batch spooled")
    small_disk.fill()
    second = writer.submit(pts(100, start=100))
    wait_until(lambda: "spool_failed" in [k for k, _ in rec.alerts], 5, what="spool_failed alert")
    third = writer.submit(pts(100, start=200))  # not taken while the second waits in memory
    time.sleep(0.3)
    assert writer.durable_through() == first == second - 1  # the held batch pins its ticket
    stats = writer.stats
    assert stats.unspooled_lines == 100 and stats.pending_points == 100 and stats.spooled_lines == 100
    small_disk.free()
    wait_until(lambda: writer.durable_through() == third, 10, what="held batches spooled once the disk has room")
    assert [k for k, _ in rec.alerts].count("spool_failed") == 1
    store.down = False
    assert writer.flush(10)
    assert sorted(store.lines) == sorted(encode_point(p) for p in pts(300))
    assert writer.stats.unspooled_lines == 0
    writer.stop()


def test_a_full_disk_and_a_store_that_comes_back_writes_the_held_batch_to_the_store(
    small_disk: SmallDisk,
) -> None:
    store, rec = ScriptedStore(), Recorder()
    store.down = True
    small_disk.fill()
    writer = make(store, small_disk.root, rec, batch_points=100, flush_interval_s=0.01)
    ticket = writer.submit(pts(100))
    wait_until(lambda: writer.stats.unspooled_lines == 100, 5, what="batch held in memory")
    assert writer.durable_through() < ticket
    store.down = False  # the disk stays full
    wait_until(lambda: writer.durable_through() == ticket, 10, what="held batch written to the store")
    assert sorted(store.lines) == sorted(encode_point(p) for p in pts(100))
    writer.stop()


def test_a_full_disk_makes_submit_wait_instead_of_spilling(small_disk: SmallDisk) -> None:
    """Memory stays bounded with no disk to spill to: the submitter is held (the MQTT link stops reading,
    the broker keeps the messages) until the writer can take points again."""
    store, rec = ScriptedStore(), Recorder()
    store.down = True
    small_disk.fill()
    writer = make(store, small_disk.root, rec, batch_points=100, flush_interval_s=0.01, max_pending_points=200)
    writer.submit(pts(100))
    wait_until(lambda: writer.stats.unspooled_lines == 100, 5, what="batch held in memory")
    done: list[int] = []

    def produce() -> None:
        for i in range(1, 6):
            done.append(writer.submit(pts(100, start=i * 100)))

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    time.sleep(1.5)
    assert producer.is_alive() and len(done) == 2  # the queue holds 200 points, the third submit waits
    assert writer.stats.pending_points == 200 and writer.stats.spooled_lines == 0
    store.down = False
    producer.join(10)
    assert not producer.is_alive() and len(done) == 5
    assert writer.flush(10)
    assert sorted(store.lines) == sorted(encode_point(p) for p in pts(600))
    writer.stop()
