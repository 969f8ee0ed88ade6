"""Prometheus metrics for the hub, on its own ``CollectorRegistry``.

The ingest thread only bumps plain integers in :class:`IngestStats` (a dict
increment is far cheaper than a prometheus_client child with its lock); the
:class:`HubCollector` turns them, the writer's stats and the registry's health
counts into metric families at scrape time.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

#: End-to-end lag buckets in seconds (receive time minus device timestamp).
LAG_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class LagHistogram:
    """A fixed-bucket histogram cheap enough to observe per message."""

    bounds: tuple[float, ...] = LAG_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
        self.n += 1

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs ending with +Inf."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((repr(bound), float(running)))
        out.append(("+Inf", float(self.n)))
        return out


@dataclass
class IngestStats:
    """Counters bumped by ingest, dedup, gaps, dead letter and health (read by the collector)."""

    messages: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    gaps: Counter[str] = field(default_factory=Counter)
    lost_seqs: int = 0
    resends: int = 0
    sink_errors: int = 0
    stale_status: int = 0
    epoch_resets: int = 0
    flaps_suppressed: int = 0
    deadletters_purged: int = 0
    deadletters_dropped: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    lag: LagHistogram = field(default_factory=LagHistogram)


class HubCollector:
    """A custom collector reading the hub's live objects at scrape time."""

    def __init__(
        self,
        stats: IngestStats,
        health_counts: Callable[[], Mapping[str, int]],
        writer_stats: Callable[[], Any] | None = None,
        connected: Callable[[], bool] | None = None,
    ) -> None:
        self.stats = stats
        self.health_counts = health_counts
        self.writer_stats = writer_stats
        self.connected = connected

    def describe(self) -> list[Any]:
        """No up-front description: metrics are produced at collect time."""
        return []

    def collect(self) -> Iterator[Any]:
        """Yield every metric family."""
        s = self.stats
        yield _counter("gs_ingest_messages", "Messages received, by channel", "channel", s.messages)
        yield _counter("gs_dead_letters", "Messages sent to the dead letter, by reason", "reason", s.dead_letters)
        yield _counter("gs_gaps", "Sequence gaps by what happened (opened, filled, lost, declared)", "event", s.gaps)
        yield _counter("gs_alerts", "Writer alerts by kind", "kind", s.alerts)
        for name, doc, value in (
            ("gs_dedup_duplicates", "Duplicate (device, seq) messages dropped", s.duplicates),
            ("gs_lost_seqs", "Sequence numbers recorded as data loss", s.lost_seqs),
            ("gs_resend_requests", "Resend commands sent for open gaps", s.resends),
            ("gs_sink_errors", "Exceptions raised by message sinks", s.sink_errors),
            ("gs_stale_status", "Status messages of an older session epoch ignored", s.stale_status),
            ("gs_epoch_resets", "Devices that started their session epochs over", s.epoch_resets),
            ("gs_flaps_suppressed", "Device health changes damped by flap suppression", s.flaps_suppressed),
            ("gs_deadletters_purged", "Dead letters purged beyond the cap", s.deadletters_purged),
            (
                "gs_deadletters_dropped",
                "Dead letters dropped because the pending queue was full",
                s.deadletters_dropped,
            ),
        ):
            fam = CounterMetricFamily(name, doc)
            fam.add_metric([], float(value))
            yield fam
        lag = HistogramMetricFamily("gs_ingest_lag_seconds", "Receive time minus device timestamp (live data)")
        lag.add_metric([], s.lag.buckets(), s.lag.total)
        yield lag
        devices = GaugeMetricFamily("gs_devices", "Devices by health state", labels=["state"])
        for state, count in sorted(self.health_counts().items()):
            devices.add_metric([state], float(count))
        yield devices
        if self.connected is not None:
            up = GaugeMetricFamily("gs_broker_connected", "1 when the ingest MQTT connection is up")
            up.add_metric([], 1.0 if self.connected() else 0.0)
            yield up
        yield from self._writer()

    def _writer(self) -> Iterator[Any]:
        if self.writer_stats is None:
            return
        ws = self.writer_stats()
        for attr, name, doc, family in (
            ("written_points", "gs_series_points_written", "Points written to the series store", CounterMetricFamily),
            ("batches", "gs_series_batches", "Write batches sent to the series store", CounterMetricFamily),
            ("errors", "gs_series_write_errors", "Failed series writes", CounterMetricFamily),
            ("retries", "gs_series_write_retries", "Retried series writes", CounterMetricFamily),
            ("dead_lines", "gs_series_dead_lines", "Bad series lines sent to the dead letter", CounterMetricFamily),
            ("dropped_lines", "gs_series_dropped_lines", "Series lines dropped (spool full)", CounterMetricFamily),
            ("spooled_bytes", "gs_series_spool_bytes", "Bytes waiting in the disk spool", GaugeMetricFamily),
            ("pending_points", "gs_series_pending_points", "Points queued in memory for writing", GaugeMetricFamily),
            (
                "unspooled_lines",
                "gs_series_unspooled_lines",
                "Lines held in memory, unacknowledged, because the spool could not be written (disk full)",
                GaugeMetricFamily,
            ),
        ):
            value = getattr(ws, attr, None)
            if isinstance(value, (int, float)):
                fam = family(name, doc)
                fam.add_metric([], float(value))
                yield fam
        samples = sorted(getattr(ws, "write_latency_ms", None) or [])
        if samples:
            lat = GaugeMetricFamily(
                "gs_series_write_latency_ms", "Series write latency over recent batches", labels=["quantile"]
            )
            for q in (0.5, 0.9, 0.99, 1.0):
                lat.add_metric([str(q)], float(samples[min(len(samples) - 1, int(q * len(samples)))]))
            yield lat


def _counter(name: str, doc: str, label: str, values: Mapping[str, int]) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        fam.add_metric([key], float(value))
    return fam


class HubMetrics:
    """The hub's metric registry: one collector, rendered for ``/metrics``."""

    def __init__(self, collector: HubCollector) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = collector
        self.registry.register(collector)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        data: bytes = generate_latest(self.registry)
        return data
