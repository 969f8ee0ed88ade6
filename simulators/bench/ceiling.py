"""The series server's own ceiling, measured beside the hub in ``gridsentinel bench ingest``.

The hub's drain rate can never exceed what the store takes. This phase feeds the store with
nothing but the hub's own store client: the lines the hub would write for the same load (same
measurement, tags, field names and values, timestamps), encoded before the clock starts and posted
one batch at a time, as the hub's series writer does -- no MQTT, no decoding, no hub. It reports
the points/s the server took and, when the bench started the server, the CPU the server used for
them (from ``/proc``). On a small machine the server shares the cores with the hub, so its CPU per
point bounds what any pipeline can reach there: ``cores / cpu_per_point``, before the pipeline
spends anything itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from hub.series.base import SeriesStore
from simulators.bench.util import STORE_SERVERS, Servers, cpu_seconds, say, started_pid

#: Points the phase writes at most (the lines are built in memory before the clock starts).
MAX_POINTS: Final = 1_000_000
#: Timestamp origin of the phase's lines (its own site keeps them apart from the hub's phases).
TS0: Final = 1_700_000_000_000


def ceiling_lines(measurement: str, site: str, *, messages: int, devices: int, points: int, metrics: int) -> list[str]:
    """The lines the hub writes (``hub.ingest.pipeline.telemetry_lines``) for ``messages`` loadgen messages of
    ``points`` x ``metrics`` from ``devices`` devices (``site``-00000 ...), message ``n`` from device
    ``n % devices``."""
    from hub.ingest.pipeline import telemetry_lines
    from hub.series.lineproto import series_prefix
    from simulators.loadgen import expected_telemetry

    keys = [(measurement, {"site": site, "device": f"{site}-{d:05d}"}) for d in range(devices)]
    prefixes = [series_prefix(*key) for key in keys]
    out: list[str] = []
    for n in range(messages):
        msg = expected_telemetry(n // devices, TS0 + 10 * n, points, metrics)
        for line in telemetry_lines(keys[n % devices], prefixes[n % devices], msg):
            assert isinstance(line, str)  # loadgen values are finite floats: always lines
            out.append(line)
    return out


def server_pid(servers: Servers) -> int | None:
    """The pid of the store server the bench started (None for the embedded store or ``--influx-url``)."""
    return started_pid(servers, STORE_SERVERS.get(servers.store, ""))


def write_timed(
    write_lines: Callable[[Sequence[str]], None], lines: Sequence[str], batch: int, pid: int | None
) -> dict[str, Any]:
    """Post ``lines`` in batches of ``batch`` one after the other; the rate and the server's CPU for them."""
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    for start in range(0, len(lines), batch):
        write_lines(lines[start : start + batch])
    elapsed = max(time.perf_counter() - t0, 1e-9)
    cpu1 = cpu_seconds(pid)
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return {
        "points": len(lines),
        "batch_points": batch,
        "write_s": round(elapsed, 3),
        "points_per_s": round(len(lines) / elapsed, 1),
        "server_cpu_cores": None if cpu is None else round(cpu / elapsed, 2),
        "server_cpu_us_per_point": None if cpu is None or not lines else round(cpu / len(lines) * 1e6, 2),
    }


def run_ceiling(
    servers: Servers,
    store: SeriesStore,
    *,
    site: str,
    measurement: str,
    messages: int,
    devices: int,
    points: int,
    metrics: int,
    batch: int,
    count: Callable[[int], int],
) -> dict[str, Any]:
    """Write the phase's lines (devices of ``site``) through ``store`` (the hub's store client on its own
    database) and check by counting (``count(expected)``) that the store holds every one."""
    messages = max(1, min(messages, MAX_POINTS // points))
    lines = ceiling_lines(measurement, site, messages=messages, devices=devices, points=points, metrics=metrics)
    say(f"store alone: writing {len(lines):,} lines ({points} per message, {metrics} fields) in batches of {batch:,}")
    result = write_timed(store.write_lines, lines, batch, server_pid(servers))
    stored = count(len(lines))
    result |= {"fields_per_point": metrics, "stored_points": stored, "lost": max(0, len(lines) - stored)}
    cpu = result["server_cpu_us_per_point"]
    if cpu:
        result["cores_for_200k_points_s"] = round(cpu * 200_000 / 1e6, 2)
    say(
        f"store alone: {result['points_per_s']:,.0f} points/s"
        + ("" if cpu is None else f", server {result['server_cpu_cores']} cores ({cpu} CPU-us per point)")
    )
    return result
