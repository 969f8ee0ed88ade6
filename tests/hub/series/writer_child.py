"""Child process for the kill -9 test: stream points through a SeriesWriter whose store is down.

Usage: python -m tests.hub.series.writer_child STORE_URL DB SPOOL_DIR T0
Prints ``durable N`` each time the first N points are on disk (spooled or written),
then keeps streaming until it is killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from hub.series.base import SeriesPoint
from hub.series.influx_v1 import InfluxV1Store
from hub.series.writer import SeriesWriter

CHUNK = 500


def main() -> int:
    """Stream forever; report durability after every chunk."""
    url, db, spool_dir, t0 = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    store = InfluxV1Store(url, db, timeout_s=1.0)
    writer = SeriesWriter(store, spool_dir, batch_points=CHUNK, flush_interval_s=0.01, max_backoff_s=0.2)
    writer.start()
    sent = 0
    while True:
        chunk = [
            SeriesPoint("sensor", {"site": "s1", "device": f"d{i % 10}"}, {"v": float(i)}, t0 + i)
            for i in range(sent, sent + CHUNK)
        ]
        writer.submit(chunk)
        sent += CHUNK
        deadline = time.monotonic() + 10
        while True:
            stats = writer.stats
            if stats.spooled_lines + stats.written_points >= sent:
                break
            if time.monotonic() > deadline:
                print("stuck", flush=True)
                return 1
            time.sleep(0.005)
        print(f"durable {sent}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
