"""EmbeddedStore specifics: persistence, tag updates, reads during writes, spooled-line replay."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hub.series.base import SeriesPoint, SeriesRow, StoreError
from hub.series.embedded import EmbeddedStore

T0 = 1_700_000_040_000


def test_data_and_series_keys_survive_reopen(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.sqlite3")
    store.write([SeriesPoint("sensor", {"device": "a", "site": "s"}, {"t": 1.0, "h": 2}, T0)])
    store.close()
    again = EmbeddedStore(tmp_path / "s.sqlite3")
    again.write([SeriesPoint("sensor", {"device": "a", "site": "s"}, {"t": 3.0, "h": 4}, T0 + 1000)])
    assert again.count("sensor") == 2
    assert again.query(device="a", metric="t", start_ms=T0, end_ms=T0 + 60_000, every_s=60) == [SeriesRow(T0, 2.0)]
    again.close()


def test_device_moving_grid_updates_its_series_tags(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.sqlite3")
    store.write([SeriesPoint("sensor", {"device": "a", "grid": "110101001001001"}, {"t": 1.0}, T0)])
    store.write([SeriesPoint("sensor", {"device": "a", "grid": "110101001001002"}, {"t": 3.0}, T0 + 1)])
    assert store.count("sensor", device="a") == 2
    assert store.query(device="a", metric="t", start_ms=T0, end_ms=T0 + 1000, every_s=1) == [SeriesRow(T0, 2.0)]
    store.close()


def test_write_lines_replays_spooled_line_protocol(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.sqlite3")
    store.write_lines([f"sensor,device=a,site=s t={i}.5,n={i}i,ok=true {T0 + i}" for i in range(10)])
    assert store.count("sensor", device="a") == 10
    with pytest.raises(StoreError) as info:
        store.write_lines(["sensor,device=a t=1.0 1", 'sensor,device=a s="text" 2'])
    assert info.value.bad_lines == (1,) and not info.value.retryable
    store.close()


def test_reads_do_not_wait_for_a_long_write(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.sqlite3")
    store.write([SeriesPoint("sensor", {"device": "a"}, {"t": 1.0}, T0)])
    big = [SeriesPoint("sensor", {"device": f"d{i % 50}"}, {"t": float(i)}, T0 + i) for i in range(50_000)]
    writer = threading.Thread(target=store.write, args=(big,))
    writer.start()
    counts = [store.count("sensor", device="a") for _ in range(5)]
    writer.join()
    assert counts == [1] * 5
    assert store.count("sensor") == 50_001
    store.close()
