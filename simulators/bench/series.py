"""``gridsentinel bench series``: line-protocol encode cost and writer throughput into a real store.

Prints a table, or one JSON object with ``--json``. The store is the embedded
SQLite file in a temp dir unless ``--backend influxdb-v1/-v2`` and a url are given.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from hub.series.base import SeriesPoint


def make_points(count: int, devices: int = 200, t0: int = 1_700_000_000_000) -> list[SeriesPoint]:
    """Realistic sensor points: 3 tags, 5 numeric fields, one device timestamp each."""
    tags = [{"site": "s1", "grid": "110101001001001", "device": f"sensor-{d:04d}"} for d in range(devices)]
    return [
        SeriesPoint(
            "sensor",
            tags[i % devices],
            {"temp": 20.0 + (i % 97) / 10, "hum": 40.5, "pm25": float(i % 300), "battery": 87.0, "rssi": -67.0},
            t0 + i // devices * 1000,
        )
        for i in range(count)
    ]


def bench_encode(points: list[SeriesPoint]) -> dict[str, float]:
    """Microseconds per point to encode line protocol (one core)."""
    from hub.series.lineproto import encode_points

    started = time.perf_counter()
    lines = encode_points(points, lambda p, e: None, ints_as_floats=True)
    elapsed = time.perf_counter() - started
    return {"encode_us_per_point": elapsed / len(points) * 1e6, "encode_points_per_s": len(lines) / elapsed}


def bench_writer(points: list[SeriesPoint], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Submit in ingest-sized chunks, flush, and report sustained points/s and write latency."""
    from hub.series.settings import SeriesSettings, open_store
    from hub.series.writer import SeriesWriter

    values: dict[str, Any] = {"backend": args.backend, "batch_points": args.batch}
    for name in ("url", "db", "token", "org", "bucket"):
        if getattr(args, name):
            values[name] = getattr(args, name)
    if args.backend == "embedded":
        values["path"] = workdir / "series.sqlite3"
    store = open_store(SeriesSettings(**values), workdir)
    writer = SeriesWriter(store, workdir / "spool", batch_points=args.batch, flush_interval_s=0.2)
    writer.start()
    submit_s = 0.0
    started = time.perf_counter()
    for i in range(0, len(points), args.chunk):
        t = time.perf_counter()
        writer.submit(points[i : i + args.chunk])
        submit_s += time.perf_counter() - t
    ok = writer.flush(600)
    elapsed = time.perf_counter() - started
    stats = writer.stats
    writer.stop()
    fields = sum(len(p.fields) for p in points)
    latencies = sorted(stats.write_latency_ms) or [0.0]
    stored = store.count("sensor")
    store.close()
    return {
        "backend": args.backend,
        "flushed": ok,
        "points": len(points),
        "stored_points": stored,
        "points_per_s": len(points) / elapsed,
        "fields_per_s": fields / elapsed,
        "submit_us_per_point": submit_s / len(points) * 1e6,
        "batches": stats.batches,
        "write_ms_p50": latencies[len(latencies) // 2],
        "write_ms_p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print a table or JSON."""
    points = make_points(args.points)
    result: dict[str, Any] = bench_encode(points)
    with tempfile.TemporaryDirectory(prefix="gs-bench-series-") as tmp:
        result.update(bench_writer(points, args, Path(tmp)))
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
            print(f"{key:<{width}}  {shown:>16}")
    return 0 if result["flushed"] and result["stored_points"] == args.points else 1


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gridsentinel bench series``."""
    parser.add_argument("--points", type=int, default=200_000, help="points to write (5 fields each)")
    parser.add_argument("--chunk", type=int, default=100, help="points per submit call (like one MQTT message)")
    parser.add_argument("--batch", type=int, default=5000, help="writer batch_points")
    parser.add_argument("--backend", default="embedded", choices=["embedded", "influxdb-v1", "influxdb-v2"])
    parser.add_argument("--url", help="InfluxDB url for the influxdb backends")
    parser.add_argument("--db", help="database (influxdb-v1)")
    parser.add_argument("--token", help="token (influxdb-v2)")
    parser.add_argument("--org", help="org (influxdb-v2)")
    parser.add_argument("--bucket", help="bucket (influxdb-v2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
