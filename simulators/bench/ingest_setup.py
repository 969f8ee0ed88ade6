"""What every phase of ``gridsentinel bench ingest`` shares, and its comparators and soak reuse: the hub's
settings for a phase, the store probe that counts (and times) what the store acknowledged, the load
generator's spec, and waiting until every point is stored.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any, Final

from hub.config import HubSettings
from hub.series.base import SeriesPoint, SeriesRow, SeriesStore
from hub.series.settings import open_store
from simulators.bench.util import Servers, vm_count, wait_progress
from simulators.loadgen import LoadSpec

#: The measurement loadgen devices land in (they send no birth with a kind).
MEASUREMENT: Final = "unknown"
STORES: Final = ("embedded", "influxdb-v1", "influxdb-v2")
V2_TOKEN: Final = "bench-token"
V2_ORG: Final = "bench"


class BenchError(RuntimeError):
    """The benchmark could not run (a server missing, the hub stuck); the message says why."""


class AckTimingStore:
    """Wraps a store: counts points of :data:`MEASUREMENT` the store acknowledged, when, and (optionally) lag."""

    def __init__(
        self, inner: SeriesStore, *, track_lag: bool, lag_sink: Callable[[Sequence[float]], None] | None = None
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.prefers_lines = inner.prefers_lines
        self.track_lag = track_lag
        self.acked = 0
        self.first_ack = 0.0
        self.last_ack = 0.0
        self.lags_ms: list[float] = []
        #: Where lags go (default: kept in ``lags_ms``; the soak hands a fixed-size histogram instead).
        self._lag_sink = lag_sink or self.lags_ms.extend
        self.first_ts_ms: int | None = None  # earliest device timestamp acknowledged (lag tracking only)
        self._prefix = MEASUREMENT + ","

    def _acked(self, count: int, stamps: Sequence[int]) -> None:
        now = time.time()
        if count:
            self.acked += count
            self.last_ack = now
            self.first_ack = self.first_ack or now
        if stamps:
            now_ms = now * 1000.0
            low = min(stamps)
            if self.first_ts_ms is None or low < self.first_ts_ms:
                self.first_ts_ms = low
            self._lag_sink([now_ms - ts for ts in stamps])

    def write(self, points: Sequence[SeriesPoint]) -> None:
        """Write through; count our points once the store returned."""
        self.inner.write(points)
        ours = [p for p in points if p.measurement == MEASUREMENT]
        self._acked(len(ours), [p.ts_ms for p in ours] if self.track_lag else ())

    def write_lines(self, lines: Sequence[str]) -> None:
        """Write through; count our lines once the store returned."""
        self.inner.write_lines(lines)
        prefix = self._prefix
        if self.track_lag:
            stamps = [int(line[line.rindex(" ") + 1 :]) for line in lines if line.startswith(prefix)]
            self._acked(len(stamps), stamps)
        else:
            self._acked(sum(map(str.startswith, lines, repeat(prefix))), ())  # C loop: the probe costs ~nothing

    def query(
        self, *, device: str, metric: str, start_ms: int, end_ms: int, every_s: int, measurement: str | None = None
    ) -> list[SeriesRow]:
        """Delegate."""
        return self.inner.query(
            device=device, metric=metric, start_ms=start_ms, end_ms=end_ms, every_s=every_s, measurement=measurement
        )

    def count(self, measurement: str, *, device: str | None = None, site: str | None = None) -> int:
        """Delegate."""
        return self.inner.count(measurement, device=device, site=site)

    def close(self) -> None:
        """Delegate."""
        self.inner.close()


def stored_points(servers: Servers, store: SeriesStore, site: str, expected: int | None = None) -> int:
    """Points of this phase in the store: its own site (each phase also has its own db / bucket / data
    dir, unless ``--bucket`` names one bucket for all of them)."""
    if servers.store == "influxdb-v2" and servers.vm_url is not None and servers.store_url == servers.vm_url:
        # VictoriaMetrics answers no InfluxQL, and serves acknowledged samples only a few seconds later
        return vm_count(servers.vm_url, site, f"{MEASUREMENT}_m0", expected=expected)
    return store.count(MEASUREMENT, site=site)


def open_probe(settings: Any, *, track_lag: bool) -> AckTimingStore:
    """The phase's store, wrapped; an InfluxDB 1.x database is created up front so no write waits for it."""
    inner = open_store(settings.series_settings(), settings.data_dir)
    ensure = getattr(inner, "ensure_database", None)
    if callable(ensure):
        ensure()
    return AckTimingStore(inner, track_lag=track_lag)


def hub_settings(args: argparse.Namespace, servers: Servers, phase: str, workdir: Path) -> HubSettings:
    return HubSettings.model_validate(hub_settings_values(args, servers, phase, workdir))


def hub_settings_values(args: argparse.Namespace, servers: Servers, phase: str, workdir: Path) -> dict[str, Any]:
    """The phase's hub settings as plain values (the soak hands them to its hub process)."""
    values: dict[str, Any] = {
        "mqtt_url": servers.mqtt_url,
        "data_dir": workdir / phase,
        "http_port": 0,
        "client_id": f"bench-hub-{phase}",
        "series_backend": servers.store,
        "gap_timeout_s": 3600.0,  # a slow drain must not turn late seqs into loss records
    }
    if args.batch_points:
        values["series_batch_points"] = args.batch_points
    if servers.store == "influxdb-v1":
        values |= {"series_url": servers.store_url, "series_db": f"bench_{phase}"}
    elif servers.store == "influxdb-v2":
        values |= {
            "series_url": servers.store_url,
            "series_bucket": args.bucket or f"bench_{phase}",
            "series_token": args.token or V2_TOKEN,
            "series_org": args.org or V2_ORG,
        }
    return values


def load_spec(args: argparse.Namespace, url: str, *, site: str, messages: int, rate: float, devices: int) -> LoadSpec:
    processes = max(1, min(args.processes, devices))
    return LoadSpec(
        url=url,
        devices=devices,
        messages=messages,
        rate=rate,
        qos=args.qos,
        points=args.batch,
        metrics=args.metrics,
        processes=processes,
        site=site,
        device_prefix=site,
        connect_timeout_s=60.0,
        drain_timeout_s=120.0,
        isolate=True,  # the hub runs in this process: the generator must not share its GIL
    )


def wait_acked(probe: AckTimingStore, expected: int, timeout_s: float, received: Callable[[], int], label: str) -> None:
    wait_progress(
        lambda: probe.acked >= expected,
        lambda: probe.acked,
        lambda: f"{received():,} messages received, {probe.acked:,}/{expected:,} points stored",
        label,
        timeout_s,
    )


def wait_acked_remote(hub: Any, expected: int, timeout_s: float) -> None:
    """:func:`wait_acked` for a hub in another process (the soak's), asking it for its counts."""
    last: dict[str, Any] = {"acked": 0, "received": 0}

    def poll() -> int:
        last.update(hub.stats())
        return int(last["acked"])

    wait_progress(
        lambda: poll() >= expected,
        lambda: int(last["acked"]),
        lambda: f"{last['received']:,} messages received, {last['acked']:,}/{expected:,} points stored",
        "soak",
        timeout_s,
    )


def plugins_of(args: argparse.Namespace) -> tuple[str, ...] | None:
    return () if args.plugins == "none" else None
