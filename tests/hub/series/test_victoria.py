"""The v2 write path (influxdb-client WriteApi) against a real VictoriaMetrics ``/api/v2/write``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.series.base import SeriesPoint
from hub.series.influx_v2 import InfluxV2Store
from hub.series.writer import SeriesWriter
from tests.servers_influx import VictoriaMetricsServer

pytestmark = pytest.mark.integration


def samples(victoria: VictoriaMetricsServer, match: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    """Series labels -> sorted (ts, value) samples."""
    out = {}
    for row in victoria.export(match):
        labels = tuple(sorted(row["metric"].items()))
        out[labels] = sorted(zip(row["timestamps"], row["values"], strict=True))
    return out


def test_v2_write_maps_to_metrics_and_rewrite_is_deduplicated(victoria: VictoriaMetricsServer, tmp_path: Path) -> None:
    store = InfluxV2Store(victoria.url, "token", "gs", "gs")
    now = (int(time.time() * 1000) // 1000) * 1000  # VictoriaMetrics keeps recent data; retention is long anyway
    batch = [
        SeriesPoint(
            "kiosk", {"site": "s1", "grid": "110101001001001", "device": f"k{d}"}, {"paper": i * 1.5, "txn": i}, now + i
        )
        for d in range(3)
        for i in range(100)
    ]
    writer = SeriesWriter(store, tmp_path / "spool", batch_points=128, flush_interval_s=0.02)
    writer.start()
    writer.submit(batch)
    writer.submit(batch[:150])  # re-write: same device timestamps
    assert writer.flush(10)
    writer.stop()
    store.close()

    deadline = time.monotonic() + 20
    while True:  # ingested samples become searchable after VictoriaMetrics' in-memory buffer flushes
        got = samples(victoria, '{__name__=~"kiosk_.*"}')
        if len(got) == 6 and all(len(v) >= 100 for v in got.values()):
            break
        counts = {dict(k)["__name__"] + "/" + dict(k)["device"]: len(v) for k, v in got.items()}
        assert time.monotonic() < deadline, f"samples not searchable in VictoriaMetrics: {counts}"
        time.sleep(0.3)
    key = (("__name__", "kiosk_paper"), ("device", "k1"), ("grid", "110101001001001"), ("site", "s1"))
    assert got[key] == [(now + i, i * 1.5) for i in range(100)]
    assert {labels[0][1] for labels in got} == {"kiosk_paper", "kiosk_txn"}
    assert all(len(v) == 100 for v in got.values())  # nothing doubled by the re-write
