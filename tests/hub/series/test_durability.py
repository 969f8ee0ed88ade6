"""The writer against real influxd: outages, kill -9, bad lines, 429/503 -- nothing lost, nothing doubled."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hub.series.base import SeriesPoint, SeriesStore
from hub.series.influx_v1 import InfluxV1Store
from hub.series.influx_v2 import InfluxV2Store
from hub.series.writer import SeriesWriter
from simulators.servers import Influxd, free_port, wait_until
from tests.hub.series.proxy import FaultProxy

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
#: How long the store stays down in the outage test (set GS_SERIES_OUTAGE_S=60 for the full scenario).
OUTAGE_S = float(os.environ.get("GS_SERIES_OUTAGE_S", "5"))
ROOT = Path(__file__).resolve().parents[3]


def points(start: int, n: int) -> list[SeriesPoint]:
    return [
        SeriesPoint(
            "sensor", {"site": "s1", "grid": "110101001001001", "device": f"d{i % 10}"}, {"v": float(i)}, T0 + i
        )
        for i in range(start, start + n)
    ]


class Recorder:
    def __init__(self) -> None:
        self.bad: list[tuple[str, str]] = []
        self.alerts: list[tuple[str, str]] = []


def writer_for(store: SeriesStore, spool: Path, rec: Recorder, **kw: float) -> SeriesWriter:
    writer = SeriesWriter(
        store,
        spool,
        batch_points=int(kw.pop("batch_points", 1000)),
        flush_interval_s=0.05,
        on_bad_line=lambda line, reason: rec.bad.append((line, reason)),
        on_alert=lambda kind, msg: rec.alerts.append((kind, msg)),
        base_backoff_s=0.1,
        max_backoff_s=kw.pop("max_backoff_s", 1.0),
    )
    writer.start()
    return writer


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_store_outage_mid_stream_loses_nothing_and_doubles_nothing(
    api: str, own_influxd: Influxd, tmp_path: Path
) -> None:
    proxy = FaultProxy(own_influxd.port).start()
    store: SeriesStore = (
        InfluxV1Store(own_influxd.url, "gs", timeout_s=2)
        if api == "v1"
        else InfluxV2Store(proxy.url, "token", "gs", "gs", timeout_s=2)
    )
    rec = Recorder()
    writer = writer_for(store, tmp_path / "spool", rec)
    total = 0
    stop = threading.Event()

    def stream() -> None:
        nonlocal total
        while not stop.is_set():
            writer.submit(points(total, 200))
            total += 200
            time.sleep(0.01)

    streamer = threading.Thread(target=stream)
    streamer.start()
    wait_until(lambda: writer.stats.written_points > 2000, 10, what="writes before the outage")
    own_influxd.stop()
    down_at = time.monotonic()
    wait_until(lambda: writer.stats.spooled_batches > 0, 10, what="spooling during the outage")
    while time.monotonic() - down_at < OUTAGE_S:
        time.sleep(0.1)
    own_influxd.start()
    time.sleep(0.3)  # keep streaming a little after the store is back
    stop.set()
    streamer.join()
    assert writer.flush(30 + OUTAGE_S)
    stats = writer.stats
    writer.stop()
    store.close()
    proxy.stop()
    assert own_influxd.count("gs", "sensor", "v") == total  # every point once: count(*) == distinct points
    assert stats.retries >= 1 and stats.dead_lines == 0 and stats.dropped_lines == 0
    assert "store_down" in [kind for kind, _ in rec.alerts]


def test_kill_9_mid_stream_then_restart_loses_nothing(influxd: Influxd, influx_db: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    dead_port = free_port()  # nothing listens: the store is down, everything goes to the spool
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.hub.series.writer_child",
            f"http://127.0.0.1:{dead_port}",
            influx_db,
            str(spool),
            str(T0),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    durable = 0
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 30
        while durable < 5000 and time.monotonic() < deadline:
            line = child.stdout.readline()
            assert line.startswith("durable"), line
            durable = int(line.split()[1])
    finally:
        child.kill()  # SIGKILL while it keeps streaming
        child.wait()
    assert durable >= 5000
    rec = Recorder()
    writer = writer_for(InfluxV1Store(influxd.url, influx_db), spool, rec)
    assert writer.flush(30)
    writer.stop()
    body = influxd.query(f'SELECT count("v") FROM "sensor" WHERE time < {T0 + durable}ms', influx_db)
    assert body["results"][0]["series"][0]["values"][0][1] == durable
    total = influxd.count(influx_db, "sensor", "v")
    assert durable <= total and total % 500 == 0  # whole batches only, never a torn one
    assert rec.bad == []


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_type_conflict_line_is_isolated_with_the_server_reason(
    api: str, influxd: Influxd, influx_db: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    store: SeriesStore = (
        InfluxV1Store(influxd.url, influx_db) if api == "v1" else InfluxV2Store(proxy.url, "t", "gs", influx_db)
    )
    rec = Recorder()
    writer = writer_for(store, tmp_path / "spool", rec, batch_points=500)
    batch = points(0, 500)
    bad = SeriesPoint("sensor", {"site": "s1", "device": "d3"}, {"v": True}, T0 + 100_000)
    writer.submit([*batch[:200], bad, *batch[200:]])
    assert writer.flush(20)
    writer.stop()
    store.close()
    assert influxd.count(influx_db, "sensor", "v") == 500
    assert len(rec.bad) == 1
    line, reason = rec.bad[0]
    assert line == f"sensor,device=d3,site=s1 v=true {T0 + 100_000}"
    assert "field type conflict" in reason


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_429_retry_after_and_503_are_retried(
    api: str, influxd: Influxd, influx_db: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    store: SeriesStore = (
        InfluxV1Store(proxy.url, influx_db) if api == "v1" else InfluxV2Store(proxy.url, "t", "gs", influx_db)
    )
    proxy.fail_next(2, 429, retry_after="1")
    proxy.fail_next(2, 503)
    rec = Recorder()
    writer = writer_for(store, tmp_path / "spool", rec, batch_points=300)
    writer.submit(points(0, 900))
    assert writer.flush(30)
    stats = writer.stats
    writer.stop()
    store.close()
    seen = proxy.writes()
    assert [s.status for s in seen[:4]] == [429, 429, 503, 503]
    assert seen[1].at - seen[0].at >= 0.95 and seen[2].at - seen[1].at >= 0.95  # Retry-After: 1 honoured
    assert all(s.status == 204 for s in seen[4:])
    assert influxd.count(influx_db, "sensor", "v") == 900
    assert stats.retries == 4 and rec.bad == []
