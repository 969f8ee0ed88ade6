"""The store-alone phase of ``gridsentinel bench ingest`` (simulators.bench.ceiling).

Its figure is only meaningful if the lines it writes are the lines the hub writes for the same load,
so that is checked against a real ingest; the phase itself runs against a real influxd, which must
hold every line afterwards and whose CPU is read from /proc.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from hub.db import make_engine, session_factory, sqlite_url
from hub.ingest.pipeline import standalone_ingest
from hub.schema import init_schema
from hub.series.base import SeriesPoint
from simulators.bench.ceiling import TS0, ceiling_lines, write_timed
from simulators.bench.ingest import ceiling_note
from simulators.loadgen import TelemetryTemplate


@pytest.mark.parametrize(("points", "metrics"), [(1, 4), (10, 4), (3, 1)])
def test_lines_are_what_the_hub_writes_for_the_same_load(tmp_path: Path, points: int, metrics: int) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    init_schema(engine)
    submitted: list[SeriesPoint | str] = []
    ingest = standalone_ingest(session_factory(engine), submit_points=submitted.extend, root="gs", encode_lines=True)
    template = TelemetryTemplate(points, metrics)
    devices, messages = 7, 40
    for n in range(messages):
        payload = template.payload(n // devices, TS0 + 10 * n)
        assert ingest.handle(f"gs/v1/ceiling/ceiling-{n % devices:05d}/telemetry", payload, TS0 + 10 * n)
    expected = ceiling_lines("unknown", "ceiling", messages=messages, devices=devices, points=points, metrics=metrics)
    assert all(isinstance(item, str) for item in submitted)  # the hub encoded them itself (all floats)
    assert submitted == expected
    assert len(expected) == messages * points


def test_write_timed_batches_in_order_and_reads_its_own_cpu() -> None:
    calls: list[list[str]] = []
    lines = [f"m,d=a v=1.0 {i}" for i in range(12)]
    busy = subprocess.Popen(["sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])  # burns CPU
    try:

        def write(batch: object) -> None:
            assert isinstance(batch, list)
            calls.append(batch)
            time.sleep(0.05)

        result = write_timed(write, lines, 5, busy.pid)
    finally:
        busy.kill()
        busy.wait()
    assert [len(c) for c in calls] == [5, 5, 2] and [line for c in calls for line in c] == lines
    assert result["points"] == 12 and result["batch_points"] == 5 and result["points_per_s"] > 0
    assert result["server_cpu_cores"] is not None and result["server_cpu_cores"] > 0
    assert write_timed(lambda _b: None, lines, 5, None)["server_cpu_us_per_point"] is None  # no server pid


def test_note_says_what_the_store_leaves_of_the_machine() -> None:
    cores = os.cpu_count() or 1
    ceiling: dict[str, float] = {"cores_for_200k_points_s": cores - 0.5, "server_cpu_us_per_point": 1.0}
    ceiling["fields_per_point"] = 4
    note = ceiling_note({"batch": 10, "store_ceiling": ceiling})
    assert note is not None and "leaving 0.50 cores" in note and "25 CPU-us per 10-point message" in note
    big = {**ceiling, "cores_for_200k_points_s": cores + 1.0}
    assert (ceiling_note({"batch": 10, "store_ceiling": big}) or "").endswith("more than there are")
    assert ceiling_note({"batch": 10}) is None
    assert ceiling_note({"batch": 1, "store_ceiling": ceiling}) is None  # the points target is for 10-point messages
