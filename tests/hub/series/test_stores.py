"""One suite run against every backend: embedded SQLite, InfluxDB v1 and v2 API (real influxd)."""

from __future__ import annotations

import pytest

from hub.series.base import SeriesPoint, SeriesRow, SeriesStore, StoreError
from hub.series.lineproto import encode_point

T0 = 1_700_000_040_000  # a multiple of 60 s, so buckets line up with the epoch


def points(
    device: str, n: int, *, start: int = T0, step_ms: int = 1000, measurement: str = "sensor"
) -> list[SeriesPoint]:
    """``n`` points one second apart with temp = index and a bool and int field."""
    tags = {"site": "s1", "grid": "110101001001001", "device": device}
    return [
        SeriesPoint(measurement, tags, {"temp": float(i), "count": i, "door": i % 2 == 0}, start + i * step_ms)
        for i in range(n)
    ]


def test_write_then_bucketed_mean(store: SeriesStore) -> None:
    store.write(points("dev-a", 120) + points("dev-b", 10))
    rows = store.query(device="dev-a", metric="temp", start_ms=T0, end_ms=T0 + 120_000, every_s=60)
    assert rows == [SeriesRow(T0, 29.5), SeriesRow(T0 + 60_000, 89.5)]


def test_query_range_is_half_open_and_fill_none(store: SeriesStore) -> None:
    store.write(points("dev-a", 10) + points("dev-a", 5, start=T0 + 600_000))
    rows = store.query(device="dev-a", metric="temp", start_ms=T0 + 1000, end_ms=T0 + 602_000, every_s=60)
    # [1..9] in the first bucket, nothing in the empty ones (fill(none)), index 0..1 at +600 s: 2 excluded.
    assert rows == [SeriesRow(T0, 5.0), SeriesRow(T0 + 600_000, 0.5)]


def test_rewrite_is_idempotent(store: SeriesStore) -> None:
    batch = points("dev-a", 50)
    store.write(batch)
    store.write(batch)
    store.write_lines([encode_point(p) for p in batch[:20]])
    assert store.count("sensor") == 50
    assert store.count("sensor", device="dev-a") == 50
    assert store.count("sensor", device="other") == 0


def test_count_separates_devices_and_measurements(store: SeriesStore) -> None:
    store.write(points("dev-a", 7) + points("dev-b", 3) + points("cam-1", 4, measurement="camera"))
    assert store.count("sensor") == 10
    assert store.count("sensor", device="dev-b") == 3
    assert store.count("camera") == 4
    rows = store.query(device="cam-1", metric="temp", start_ms=T0, end_ms=T0 + 60_000, every_s=60, measurement="camera")
    assert rows == [SeriesRow(T0, 1.5)]
    assert store.query(device="cam-1", metric="temp", start_ms=T0, end_ms=T0 + 60_000, every_s=60) == rows


def test_count_by_site_keeps_phases_apart_in_one_database(store: SeriesStore) -> None:
    """The bench counts each phase by its site (one bucket may hold them all with --bucket)."""
    other = [SeriesPoint("sensor", {"site": "s2", "device": "dev-c"}, {"temp": 1.0}, T0 + i) for i in range(4)]
    store.write(points("dev-a", 5) + points("dev-b", 2) + other)
    assert store.count("sensor") == 11
    assert store.count("sensor", site="s1") == 7
    assert store.count("sensor", site="s2") == 4
    assert store.count("sensor", site="s2", device="dev-a") == 0
    assert store.count("sensor", site="s1", device="dev-b") == 2
    assert store.count("sensor", site="it's") == 0


def test_hostile_names_are_quoted_not_interpolated(store: SeriesStore) -> None:
    device = "o'neil x\" OR 1=1 --"
    tags = {"site": "s,1 =x", "device": device}
    store.write(
        [SeriesPoint("sensor", tags, {'we"ird m': 2.0}, T0), SeriesPoint("sensor", tags, {'we"ird m': 4.0}, T0 + 1)]
    )
    store.write(points("dev-a", 3))
    rows = store.query(device=device, metric='we"ird m', start_ms=T0, end_ms=T0 + 60_000, every_s=60)
    assert rows == [SeriesRow(T0, 3.0)]
    assert store.count("sensor", device=device) == 2
    assert store.count("sensor", device="o'neil") == 0


def test_unencodable_point_is_refused_with_its_index(store: SeriesStore) -> None:
    batch = points("dev-a", 3)
    batch.insert(1, SeriesPoint("sensor", {"device": "dev-a"}, {"temp": float("nan")}, T0 + 500))
    with pytest.raises(StoreError) as info:
        store.write(batch)
    assert not info.value.retryable
    assert info.value.bad_lines == (1,)


# Doubles whose shortest text differs between orjson and repr (exponent style), the extremes, and plain ones.
EDGE_FLOATS = (2.5e-7, 0.00001, 1e16, 1.2345678901234568e17, 5e-324, -1.7976931348623157e308, 1e22, 0.1, -123.456)


def test_floats_are_stored_as_the_same_doubles(store: SeriesStore) -> None:
    """The lines ingest writes (orjson's float text, in bulk for plain field names) are read by the
    server as exactly the doubles sent -- through write() and through write_lines()."""
    tags = {"site": "s1", "device": "dev-f"}
    batch = [SeriesPoint("sensor", tags, {"temp": v, "hum": -v}, T0 + i * 60_000) for i, v in enumerate(EDGE_FLOATS)]
    lines = [encode_point(p) for p in batch]
    lines = [encode_point(p) for p in batch]  # again: the field names are known, the bulk path writes them
    assert "temp=2.5e-7,hum=-2.5e-7 " in lines[0] and "temp=0.00001," in lines[1]
    store.write_lines(lines)
    store.write([SeriesPoint("sensor", {**tags, "device": "dev-g"}, p.fields, p.ts_ms) for p in batch])
    end = T0 + len(EDGE_FLOATS) * 60_000
    for device in ("dev-f", "dev-g"):
        for metric, sign in (("temp", 1.0), ("hum", -1.0)):
            rows = store.query(device=device, metric=metric, start_ms=T0, end_ms=end, every_s=60)
            assert [r.value for r in rows] == [sign * v for v in EDGE_FLOATS], (device, metric)
