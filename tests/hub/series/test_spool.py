"""The durable disk spool: order, restart, torn tails, bounds."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hub.series.spool import SUFFIX, DiskSpool, SpoolWriteError
from tests.hub.series.conftest import SmallDisk


def batch(n: int, tag: str = "b") -> list[str]:
    return [f"m,device={tag} x={i}i {i}" for i in range(n)]


def drain(spool: DiskSpool) -> list[list[str]]:
    out = []
    while (lines := spool.peek()) is not None:
        out.append(lines)
        spool.commit()
    return out


def test_batches_come_back_in_order_across_segments(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=10_000_000, segment_bytes=300)
    batches = [batch(5, f"d{i}") for i in range(20)]
    for b in batches:
        assert spool.append(b) is None
    assert len(list(tmp_path.glob(f"*{SUFFIX}"))) > 3
    assert spool.pending_batches == 20 and spool.pending_lines == 100
    assert drain(spool) == batches
    assert spool.pending_batches == 0 and spool.pending_bytes == 0
    assert not list(tmp_path.glob(f"*{SUFFIX}"))


def test_reopen_keeps_uncommitted_batches_only(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    batches = [batch(3, f"d{i}") for i in range(10)]
    for b in batches:
        spool.append(b)
    for _ in range(4):
        spool.peek()
        spool.commit()
    spool.close()
    reopened = DiskSpool(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    assert reopened.pending_batches == 6
    assert drain(reopened) == batches[4:]
    reopened.append(batch(2, "late"))
    reopened.close()
    again = DiskSpool(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    assert drain(again) == [batch(2, "late")]


def test_torn_tail_is_cut_at_open(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=10_000_000)
    for i in range(3):
        spool.append(batch(4, f"d{i}"))
    spool.close()
    (segment,) = tmp_path.glob(f"*{SUFFIX}")
    good_size = segment.stat().st_size
    with segment.open("ab") as fh:
        fh.write(b"\x40\x00\x00\x00\x02\x00\x00\x00garbage-from-a-crash")
    reopened = DiskSpool(tmp_path, max_bytes=10_000_000)
    assert segment.stat().st_size == good_size
    assert drain(reopened) == [batch(4, f"d{i}") for i in range(3)]


def test_corrupt_crc_stops_the_segment(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=10_000_000)
    spool.append(batch(2, "a"))
    spool.append(batch(2, "b"))
    spool.close()
    (segment,) = tmp_path.glob(f"*{SUFFIX}")
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert drain(DiskSpool(tmp_path, max_bytes=10_000_000)) == [batch(2, "a")]


def test_bound_drops_oldest_segments_and_says_so(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=4000, segment_bytes=1000)
    dropped_lines = 0
    dropped_batches = 0
    for i in range(40):
        dropped = spool.append(batch(5, f"d{i:02d}"))
        if dropped is not None:
            dropped_lines += dropped.lines
            dropped_batches += dropped.batches
    assert spool.pending_bytes <= 4000
    remaining = drain(spool)
    assert dropped_batches + len(remaining) == 40
    assert dropped_lines == dropped_batches * 5
    assert remaining[-1] == batch(5, "d39")
    # What is left is the newest, contiguous run.
    first = int(remaining[0][0].split("device=d")[1][:2])
    assert remaining == [batch(5, f"d{i:02d}") for i in range(first, 40)]


def test_batch_bigger_than_the_bound_is_dropped_and_reported(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1000)
    dropped = spool.append(batch(200))
    assert dropped is not None and dropped.lines == 200 and dropped.batches == 1
    assert spool.peek() is None


def test_a_full_disk_refuses_the_batch_whole_and_keeps_the_rest(small_disk: SmallDisk) -> None:
    """On a real filesystem that runs out of space mid-record: the partial record is cut back off, the
    error says what was not kept, and the batches before and after it read back whole."""
    directory = small_disk.root / "spool"
    spool = DiskSpool(directory, max_bytes=10_000_000)
    spool.append(batch(50, "a"))
    small_disk.fill(leave_bytes=64 * 1024)
    big = batch(20_000, "big")  # ~500 KB: part of it fits, then ENOSPC
    with pytest.raises(SpoolWriteError, match=r"could not write a batch of 20000 lines .*No space left"):
        spool.append(big)
    assert spool.pending_batches == 1
    (segment,) = directory.glob(f"*{SUFFIX}")
    assert segment.stat().st_size == spool.pending_bytes  # nothing torn left behind
    spool.append(batch(50, "b"))  # small enough for the space left
    small_disk.free()
    spool.append(batch(50, "c"))
    spool.close()
    assert drain(DiskSpool(directory, max_bytes=10_000_000)) == [batch(50, "a"), batch(50, "b"), batch(50, "c")]


def test_a_full_disk_when_a_segment_is_created_lists_no_segment(small_disk: SmallDisk) -> None:
    directory = small_disk.root / "spool"
    spool = DiskSpool(directory, max_bytes=10_000_000, segment_bytes=1)  # every batch opens a new segment
    spool.append(batch(5, "a"))
    small_disk.fill()
    with pytest.raises(SpoolWriteError):
        spool.append(batch(5, "b"))
    small_disk.free()
    spool.append(batch(5, "c"))
    assert drain(spool) == [batch(5, "a"), batch(5, "c")]


def test_a_full_disk_does_not_stop_the_replay_and_warns_once(
    small_disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    """The read cursor cannot be saved on a full disk: the replay goes on (a restart would only replay
    written batches again, which timestamps make idempotent), and the operator is told once."""
    spool = DiskSpool(small_disk.root / "spool", max_bytes=10_000_000)
    for tag in "abc":
        spool.append(batch(5, tag))
    small_disk.fill()
    with caplog.at_level(logging.WARNING, logger="hub.series.spool"):
        assert spool.peek() == batch(5, "a")
        spool.commit()
        assert spool.peek() == batch(5, "b")
        spool.commit()
    assert [r.getMessage() for r in caplog.records if "cursor" in r.getMessage()] == [
        "spool: could not save the read cursor ([Errno 28] No space left on device); "
        "a restart would replay written batches"
    ]
    assert spool.pending_batches == 1
