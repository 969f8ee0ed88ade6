"""``gridsentinel bench ingest --soak SECONDS``: does the hub's memory stay flat under steady load?

The hub runs in a process of its own (spawned, so it shares nothing with the bench), built as the
drain and sustained phases build it, writing to the bench's real store through a probe that counts
acknowledged points and keeps the lag (store acknowledgement minus device timestamp) in a fixed
histogram -- a list of counts allocated at start, so the probe itself does not grow. The load
generator is a second process: ``--devices`` (500) connections, one message per device per second.
The bench reads the hub process's RSS from ``/proc/PID/status`` at the start, every minute and at
the end, and at the end counts the points in the store against what was published.

The figure that answers "does it leak" is ``soak_rss_growth_pct``: RSS growth from minute 5 (caches
warm, the registry holds every device) to the end. Minute 0 to 5 includes start-up and warm-up.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from simulators.bench.util import Servers, cpu_seconds, say

#: Lag histogram: 1 ms buckets up to this many ms, then one overflow bucket.
LAG_BUCKETS_MS: Final = 60_000
#: RSS growth is measured from this minute of the soak (start-up and warm-up come before it).
BASELINE_MINUTE: Final = 5
SAMPLE_EVERY_S: Final = 60.0


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB (``VmRSS`` of ``/proc/PID/status``), None when gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class LagHistogram:
    """Counts of lags in 1 ms buckets (fixed size, allocated once) and their percentiles."""

    def __init__(self, buckets_ms: int = LAG_BUCKETS_MS) -> None:
        self.counts = [0] * (buckets_ms + 1)
        self.top = buckets_ms

    def add_ms(self, lags_ms: Sequence[float]) -> None:
        """Count each lag (negative clamps to 0, beyond the top goes to the overflow bucket)."""
        counts, top = self.counts, self.top
        for lag in lags_ms:
            counts[min(top, max(0, int(lag)))] += 1

    def percentile_s(self, q: float) -> float | None:
        """The ``q`` quantile in seconds (upper edge of its bucket), None when empty."""
        total = sum(self.counts)
        if not total:
            return None
        rank, seen = q * total, 0
        for ms, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return (ms + 1) / 1000.0
        return (self.top + 1) / 1000.0


def _hub_main(settings_values: dict[str, Any], plugins_none: bool, conn: Connection) -> None:
    """The soak's hub process: start the hub on a lag-histogram probe, answer 'stats' until 'stop'."""
    from hub.config import HubSettings
    from hub.series.settings import open_store
    from hub.service import Hub, tune_gc
    from simulators.bench.ingest import AckTimingStore
    from simulators.bench.util import start_hub_quietly

    settings = HubSettings.model_validate(settings_values)
    inner = open_store(settings.series_settings(), settings.data_dir)
    ensure = getattr(inner, "ensure_database", None)
    if callable(ensure):
        ensure()
    histogram = LagHistogram()
    probe = AckTimingStore(inner, track_lag=True, lag_sink=histogram.add_ms)
    hub = Hub(settings, store=probe, plugins=() if plugins_none else None)
    start_hub_quietly(hub)
    tune_gc()  # as `gridsentinel hub run` does
    conn.send("started")
    try:
        while True:
            request = conn.recv()
            received = int(hub.stats.messages.get("telemetry", 0))
            if request == "stop":
                break
            conn.send({"acked": probe.acked, "received": received, "duplicates": hub.stats.duplicates})
        conn.send(
            {
                "acked": probe.acked,
                "received": int(hub.stats.messages.get("telemetry", 0)),
                "duplicates": hub.stats.duplicates,
                "lag_p50_s": histogram.percentile_s(0.50),
                "lag_p99_s": histogram.percentile_s(0.99),
                "lag_max_bucket_s": max((i + 1 for i, c in enumerate(histogram.counts) if c), default=0) / 1000.0,
            }
        )
    finally:
        hub.stop()


class SoakHub:
    """The hub process of the soak and a pipe to ask it for its counts."""

    def __init__(self, settings_values: dict[str, Any], plugins_none: bool) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_hub_main, args=(settings_values, plugins_none, child), name="soak-hub", daemon=True
        )
        self._lock = threading.Lock()

    def start(self, timeout_s: float = 60.0) -> int:
        """Start the process; its pid once the hub is up."""
        self.proc.start()
        if not self._conn.poll(timeout_s):
            raise RuntimeError(f"the soak hub did not start within {timeout_s} s")
        self._conn.recv()
        assert self.proc.pid is not None
        return self.proc.pid

    def stats(self) -> dict[str, Any]:
        """Acknowledged points, received messages, duplicates."""
        with self._lock:
            self._conn.send("stats")
            result: dict[str, Any] = self._conn.recv()
            return result

    def stop(self) -> dict[str, Any]:
        """Final counts and lag percentiles; the process ends."""
        with self._lock:
            self._conn.send("stop")
            final: dict[str, Any] = self._conn.recv() if self._conn.poll(60) else {}
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()
        return final


def growth_pct(samples: Sequence[tuple[float, int]], baseline_minute: float = BASELINE_MINUTE) -> float | None:
    """RSS growth in % from the first sample at or after ``baseline_minute`` to the last (None if no such pair)."""
    base = next((rss for minute, rss in samples if minute >= baseline_minute), None)
    if base is None or not samples or samples[-1][0] <= baseline_minute:
        return None
    return round((samples[-1][1] - base) / base * 100.0, 2)


def run_soak(args: argparse.Namespace, servers: Servers, workdir: Path) -> dict[str, Any]:
    """Steady load (``--devices`` x 1 msg/s for ``--soak`` seconds) on a hub in its own process."""
    from hub.config import HubSettings
    from hub.series.settings import open_store
    from simulators.bench.ingest import _hub_settings_values, _load_spec, stored_points, wait_acked_remote
    from simulators.bench.util import forget_session
    from simulators.loadgen import run_load

    values = _hub_settings_values(args, servers, "soak", workdir)
    hub = SoakHub(values, args.plugins == "none")
    pid = hub.start()
    messages = int(args.devices * args.soak)
    spec = _load_spec(
        args, servers.mqtt_url, site="soak", messages=messages, rate=float(args.devices), devices=args.devices
    )
    say(f"soak: hub pid {pid}; {spec.devices} devices x 1 msg/s for {args.soak:,.0f} s ({messages:,} messages)")
    samples: list[tuple[float, int]] = []
    load_box: list[Any] = []
    failure: list[BaseException] = []

    def load() -> None:
        try:
            load_box.append(run_load(spec))
        except BaseException as exc:  # handed to the main thread, which reports it
            failure.append(exc)

    t0 = time.monotonic()
    cpu0 = cpu_seconds(pid)
    rss0 = rss_kib(pid)
    if rss0 is not None:
        samples.append((0.0, rss0))
        say(f"soak: minute 0: hub RSS {rss0 / 1024:.1f} MiB")
    loader = threading.Thread(target=load, name="soak-load", daemon=True)
    loader.start()
    next_sample = t0 + SAMPLE_EVERY_S
    try:
        while loader.is_alive():
            loader.join(timeout=max(0.0, min(1.0, next_sample - time.monotonic())))
            if time.monotonic() >= next_sample:
                rss = rss_kib(pid)
                minute = (time.monotonic() - t0) / 60.0
                if rss is not None:
                    samples.append((round(minute, 2), rss))
                    got = hub.stats()
                    say(
                        f"soak: minute {minute:.0f}: hub RSS {rss / 1024:.1f} MiB, "
                        f"{got['received']:,} received, {got['acked']:,} stored"
                    )
                next_sample += SAMPLE_EVERY_S
        if failure:
            raise failure[0]
        result_load = load_box[0]
        expected = result_load.messages * spec.points
        wait_acked_remote(hub, expected, args.timeout)
        cpu1 = cpu_seconds(pid)
        cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
        rss_end = rss_kib(pid)
        if rss_end is not None:
            samples.append((round((time.monotonic() - t0) / 60.0, 2), rss_end))
            say(f"soak: end: hub RSS {rss_end / 1024:.1f} MiB")
        final = hub.stop()
    finally:
        if hub.proc.is_alive():
            hub.stop()
        forget_session(servers.mqtt_url, values["client_id"])
    settings = HubSettings.model_validate(values)
    counter = open_store(settings.series_settings(), settings.data_dir)
    try:
        stored = stored_points(servers, counter, "soak", expected)
    finally:
        counter.close()
    return {
        "seconds": args.soak,
        "devices": spec.devices,
        "messages": result_load.messages,
        "points": expected,
        "received": final.get("received"),
        "stored_points": stored,
        "lost": max(0, expected - stored),
        "duplicates": final.get("duplicates"),
        "lag_p50_s": final.get("lag_p50_s"),
        "lag_p99_s": final.get("lag_p99_s"),
        "rss_mib": [(minute, round(kib / 1024, 1)) for minute, kib in samples],
        "rss_start_mib": round(samples[0][1] / 1024, 1) if samples else None,
        "rss_end_mib": round(samples[-1][1] / 1024, 1) if samples else None,
        "soak_rss_growth_pct": growth_pct(samples),
        "rss_baseline_minute": BASELINE_MINUTE,
        "hub_cpu_us_per_msg": None if cpu is None else round(cpu / max(1, result_load.messages) * 1e6, 1),
    }
