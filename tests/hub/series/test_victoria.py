"""The v2 write path (influxdb-client WriteApi) against a real VictoriaMetrics ``/api/v2/write``."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from hub.series.base import SeriesPoint
from hub.series.influx_v2 import InfluxV2Store
from hub.series.writer import SeriesWriter
from simulators.bench.util import vm_count, vm_count_now
from simulators.servers import VictoriaMetrics

pytestmark = pytest.mark.integration


def samples(victoria: VictoriaMetrics, match: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    """Series labels -> sorted (ts, value) samples."""
    out = {}
    for row in victoria.export(match):
        labels = tuple(sorted(row["metric"].items()))
        # One row per series: with export's reduce_mem_usage=1 a series stored in two parts came as two rows,
        # and keeping the last one read as "82 of 100 samples" -- nothing was lost (docs/benchmarks.md).
        assert labels not in out, f"two export rows for one series: {labels}"
        out[labels] = sorted(zip(row["timestamps"], row["values"], strict=True))
    return out


def test_v2_write_maps_to_metrics_and_rewrite_is_deduplicated(victoria: VictoriaMetrics, tmp_path: Path) -> None:
    store = InfluxV2Store(victoria.url, "token", "gs", "gs")
    site = f"s{uuid.uuid4().hex[:10]}"  # the server is shared by the session: look only at this test's series
    now = (int(time.time() * 1000) // 1000) * 1000  # VictoriaMetrics keeps recent data; retention is long anyway
    batch = [
        SeriesPoint(
            "kiosk", {"site": site, "grid": "110101001001001", "device": f"k{d}"}, {"paper": i * 1.5, "txn": i}, now + i
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
    # Our side of the contract: VictoriaMetrics acknowledged every line, none dead or dropped.
    assert writer.stats.written_points >= 450 and writer.stats.dead_lines == 0 and writer.stats.dropped_lines == 0

    deadline = time.monotonic() + 60
    while True:
        # Acknowledged samples become searchable a few seconds after VictoriaMetrics took them; every series
        # must then hold exactly its 100 samples (the re-written ones merged by the 1 ms dedup).
        got = samples(victoria, f'{{__name__=~"kiosk_.*",site="{site}"}}')
        if len(got) == 6 and all(len(v) == 100 for v in got.values()):
            break
        counts = {dict(k)["__name__"] + "/" + dict(k)["device"]: len(v) for k, v in got.items()}
        assert time.monotonic() < deadline, f"series not searchable in VictoriaMetrics: {counts}"
        victoria.force_flush()
        time.sleep(1.0)
    key = (("__name__", "kiosk_paper"), ("device", "k1"), ("grid", "110101001001001"), ("site", site))
    assert got[key] == [(now + i, i * 1.5) for i in range(100)]
    assert {labels[0][1] for labels in got} == {"kiosk_paper", "kiosk_txn"}
    assert all(len(v) == 100 for v in got.values())  # all there, nothing doubled by the re-write


def test_bench_count_waits_for_acknowledged_samples_to_become_searchable(victoria: VictoriaMetrics) -> None:
    """The bench's sustained-phase loss on /api/v2/write: VictoriaMetrics answers 204 before the samples are
    searchable (up to ~2.5 s later, force_flush or not), and the bench counted once straight after the last
    acknowledgement. A single count (timeout 0, the old vm_count) comes up short here; the settled one does not."""
    store = InfluxV2Store(victoria.url, "token", "gs", "gs")
    site = f"s{uuid.uuid4().hex[:10]}"
    t0 = int(time.time() * 1000)
    total = 0
    for rnd in range(40):  # 500 devices, a sample each every 50 ms, as the sustained phase sends them
        store.write_lines(
            [f"unknown,device=d{d:05d},site={site} m0={rnd}.0,m1=1.0 {t0 + rnd * 50 + d % 50}" for d in range(500)]
        )
        total += 500
    store.close()
    at_once = vm_count(victoria.url, site, "unknown_m0", timeout_s=0)
    settled = vm_count(victoria.url, site, "unknown_m0", expected=total)
    assert settled == total, f"{settled} of {total} samples searchable after settling ({at_once} at once)"
    assert vm_count_now(victoria.url, site, "unknown_m0") == total  # nothing more, nothing doubled
