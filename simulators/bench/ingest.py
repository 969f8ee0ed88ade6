"""``gridsentinel bench ingest``: simulated devices -> real mosquitto -> hub -> real series store.

Two measurements, each with its own hub, store database and persistent session:

- **backlog drain**: the hub's persistent session is subscribed once, then N
  messages are queued at the broker while the hub is down (the load generator
  is finished before the hub starts, so it takes no CPU from it); the hub
  starts and the clock runs from its first received message until the store
  has acknowledged every point -- the "catch up after an outage" case;
- **sustained**: live load from many device connections at a target rate; lag
  is the store's acknowledgement time minus the device timestamp of each point.

Loss is checked by counting what the store holds against what was published.
Beside it, two widely used MQTT -> InfluxDB pipelines drain the same kind of
backlog: the one people copy from the InfluxDB client docs (paho-mqtt +
influxdb-client's batching ``WriteApi``, into a server speaking ``/api/v2/write``:
simulators.bench.compare) and Node-RED, tuned as its users tune it, into the same influxd
(simulators.bench.nodered); the hub's drain and Node-RED's alternate for ``--rounds`` rounds
and the medians are compared. Each drain reports the CPU per message of the pipeline,
the broker and the store, from ``/proc``. ``--soak SECONDS`` replaces the phases with
a long steady run of the hub in its own process (simulators.bench.soak).
Telegraf is not packaged here.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any, Final

from hub.series.base import SeriesPoint, SeriesRow, SeriesStore
from simulators.bench.util import (
    ProcessCpu,
    Servers,
    default_store,
    forget_session,
    prime_session,
    say,
    start_hub_quietly,
    start_servers,
    vm_count,
    wait_progress,
)
from simulators.servers import ServerError

logger = logging.getLogger(__name__)

#: Targets from the issue (2-core machine, QoS 1, a real InfluxDB-API server).
TARGET_DRAIN_MSGS_S: Final = 25_000.0  # single-point messages
TARGET_DRAIN_POINTS_S: Final = 200_000.0  # 10-point messages
TARGET_SUSTAINED_MSGS_S: Final = 10_000.0
TARGET_LAG_P99_S: Final = 1.0
#: The measurement loadgen devices land in (they send no birth with a kind).
MEASUREMENT: Final = "unknown"
STORES: Final = ("embedded", "influxdb-v1", "influxdb-v2")
V2_TOKEN: Final = "bench-token"
V2_ORG: Final = "bench"


class BenchError(RuntimeError):
    """The benchmark could not run (a server missing, the hub stuck); the message says why."""


# ------------------------------------------------------------------ store probe


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


# ------------------------------------------------------------------ phases


def stored_points(servers: Servers, store: SeriesStore, site: str, expected: int | None = None) -> int:
    """Points of this phase in the store: its own site (each phase also has its own db / bucket / data
    dir, unless ``--bucket`` names one bucket for all of them)."""
    if servers.store == "influxdb-v2" and servers.vm_url is not None and servers.store_url == servers.vm_url:
        # VictoriaMetrics answers no InfluxQL, and serves acknowledged samples only a few seconds later
        return vm_count(servers.vm_url, site, f"{MEASUREMENT}_m0", expected=expected)
    return store.count(MEASUREMENT, site=site)


def _open_probe(settings: Any, *, track_lag: bool) -> AckTimingStore:
    """The phase's store, wrapped; an InfluxDB 1.x database is created up front so no write waits for it."""
    from hub.series.settings import open_store

    inner = open_store(settings.series_settings(), settings.data_dir)
    ensure = getattr(inner, "ensure_database", None)
    if callable(ensure):
        ensure()
    return AckTimingStore(inner, track_lag=track_lag)


def _hub_settings(args: argparse.Namespace, servers: Servers, phase: str, workdir: Path) -> Any:
    from hub.config import HubSettings

    return HubSettings.model_validate(_hub_settings_values(args, servers, phase, workdir))


def _hub_settings_values(args: argparse.Namespace, servers: Servers, phase: str, workdir: Path) -> dict[str, Any]:
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


def _load_spec(args: argparse.Namespace, url: str, *, site: str, messages: int, rate: float, devices: int) -> Any:
    from simulators.loadgen import LoadSpec

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


def _wait_acked(
    probe: AckTimingStore, expected: int, timeout_s: float, received: Callable[[], int], label: str
) -> None:
    wait_progress(
        lambda: probe.acked >= expected,
        lambda: probe.acked,
        lambda: f"{received():,} messages received, {probe.acked:,}/{expected:,} points stored",
        label,
        timeout_s,
    )


def wait_acked_remote(hub: Any, expected: int, timeout_s: float) -> None:
    """:func:`_wait_acked` for a hub in another process (the soak's), asking it for its counts."""
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


def _plugins(args: argparse.Namespace) -> tuple[str, ...] | None:
    return () if args.plugins == "none" else None


def run_drain(args: argparse.Namespace, servers: Servers, workdir: Path, round_no: int = 0) -> dict[str, Any]:
    """Queue N messages for the stopped hub, start it, time until the store acknowledged every point
    (``round_no`` gives each round its own site, database and session)."""
    from hub.ingest.pipeline import ingest_filters
    from hub.service import Hub, tune_gc
    from simulators.loadgen import run_load

    phase = f"drain{round_no or ''}"
    settings = _hub_settings(args, servers, phase, workdir)
    prime_session(servers.mqtt_url, settings.client_id, ingest_filters(settings.root, None), args.qos)
    spec = _load_spec(args, servers.mqtt_url, site=phase, messages=args.messages, rate=0.0, devices=args.devices)
    say(f"drain: queueing {spec.messages:,} messages x {spec.points} points from {spec.devices} devices")
    load = run_load(spec)
    expected = load.messages * spec.points
    say(f"drain: {load.messages:,} queued at the broker ({load.msgs_per_s:,.0f} msgs/s); starting the hub")
    probe = _open_probe(settings, track_lag=False)
    hub = Hub(settings, store=probe, plugins=_plugins(args))
    first: list[float] = []
    cpu: list[ProcessCpu] = []
    stop_watch = threading.Event()

    def received() -> int:
        return int(hub.stats.messages.get("telemetry", 0))

    def watch() -> None:  # the clock (and the CPU count) start at the first message the hub receives
        while not stop_watch.is_set() and not received():
            time.sleep(0.0005)
        first.append(time.time())
        cpu.append(ProcessCpu(servers, pipeline_pid=os.getpid()))

    watcher = threading.Thread(target=watch, name="bench-first-message", daemon=True)
    watcher.start()
    started = time.time()
    try:
        start_hub_quietly(hub)
        tune_gc()  # as `gridsentinel hub run` does
        _wait_acked(probe, expected, args.timeout, received, "drain")
        cpu_us = cpu[0].per_message_us(load.messages) if cpu else None
        stop_watch.set()
        watcher.join(1)
        t0 = first[0] if first else started
        elapsed = max(probe.last_ack - t0, 1e-9)
        stored = stored_points(servers, probe, phase, expected)
        duplicates = hub.stats.duplicates
        dead = sum(hub.stats.dead_letters.values())
        got = received()
    finally:
        stop_watch.set()
        hub.stop()
        forget_session(servers.mqtt_url, settings.client_id)
    return {
        "messages": load.messages,
        "points": expected,
        "received": got,
        "acked_points": probe.acked,
        "stored_points": stored,
        "lost": max(0, expected - stored),
        "duplicates": duplicates,
        "dead_letters": dead,
        "startup_s": round(t0 - started, 3),
        "drain_s": round(elapsed, 3),
        "msgs_per_s": round(load.messages / elapsed, 1),
        "points_per_s": round(expected / elapsed, 1),
        "queue_msgs_per_s": round(load.msgs_per_s, 1),
        "cpu_us_per_msg": cpu_us,
    }


def run_store_ceiling(args: argparse.Namespace, servers: Servers, workdir: Path) -> dict[str, Any]:
    """The store alone, fed the lines the drain's hub wrote by a bare writer (simulators.bench.ceiling)."""
    from simulators.bench.ceiling import run_ceiling

    settings = _hub_settings(args, servers, "ceiling", workdir)
    probe = _open_probe(settings, track_lag=False)
    try:
        return run_ceiling(
            servers,
            probe.inner,
            measurement=MEASUREMENT,
            messages=args.messages,
            devices=args.devices,
            points=args.batch,
            metrics=args.metrics,
            batch=settings.series_settings().batch_points,
            count=lambda expected: stored_points(servers, probe, "ceiling", expected),
        )
    finally:
        probe.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run_sustained(args: argparse.Namespace, servers: Servers, workdir: Path) -> dict[str, Any]:
    """Live load at ``--rate`` from ``--connections`` devices; lag from device timestamp to store ack."""
    from hub.service import Hub, tune_gc
    from simulators.loadgen import run_load

    settings = _hub_settings(args, servers, "live", workdir)
    probe = _open_probe(settings, track_lag=True)
    hub = Hub(settings, store=probe, plugins=_plugins(args))
    messages = int(args.rate * args.seconds)
    spec = _load_spec(
        args, servers.mqtt_url, site="live", messages=messages, rate=float(args.rate), devices=args.connections
    )
    try:
        start_hub_quietly(hub)
        tune_gc()  # as `gridsentinel hub run` does
        deadline = time.monotonic() + 10
        while hub.ingest is not None and not hub.ingest.connected:
            if time.monotonic() > deadline:
                raise BenchError("the hub did not connect to mosquitto within 10 s")
            time.sleep(0.01)
        say(
            f"sustained: {spec.devices} connections in {spec.processes} processes, "
            f"{args.rate:,} msgs/s for {args.seconds} s ({messages:,} messages)"
        )
        load = run_load(spec)
        expected = load.messages * spec.points
        say(f"sustained: published {load.messages:,} at {load.msgs_per_s:,.0f} msgs/s; waiting for the store")

        def received() -> int:
            return int(hub.stats.messages.get("telemetry", 0))

        _wait_acked(probe, expected, args.timeout, received, "sustained")
        stored = stored_points(servers, probe, "live", expected)
        duplicates = hub.stats.duplicates
        got = received()
    finally:
        hub.stop()
        forget_session(servers.mqtt_url, settings.client_id)
    lags = [ms / 1000.0 for ms in probe.lags_ms]
    # end to end: first device timestamp to the store's last acknowledgement (falls behind when the hub does)
    span = probe.last_ack - (probe.first_ts_ms or 0) / 1000.0 if probe.first_ts_ms else 0.0
    return {
        "connections": load.connections,
        "processes": spec.processes,
        "target_rate": args.rate,
        "messages": load.messages,
        "points": expected,
        "received": got,
        "stored_points": stored,
        "lost": max(0, expected - stored),
        "duplicates": duplicates,
        "publish_s": round(load.elapsed_s, 3),
        "sustained_msgs_per_s": round(load.messages / load.elapsed_s, 1) if load.elapsed_s else 0.0,
        "stored_msgs_per_s": round(load.messages / span, 1) if span > 0 else 0.0,
        "lag_p50_s": round(_percentile(lags, 0.50), 4),
        "lag_p99_s": round(_percentile(lags, 0.99), 4),
        "lag_max_s": round(max(lags), 4) if lags else math.nan,
    }


# ------------------------------------------------------------------ main


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument(
        "--store",
        choices=STORES,
        default=None,
        help="series store the hub writes to; influxdb-v1 starts influxd, influxdb-v2 starts victoria-metrics "
        "(unless --influx-url is given); default influxdb-v1 when influxd is installed, else embedded",
    )
    parser.add_argument("--influx-url", default=None, help="use this InfluxDB instead of starting a server")
    parser.add_argument("--token", default=None, help="API token for --influx-url with influxdb-v2")
    parser.add_argument("--org", default=None, help="organisation for --influx-url with influxdb-v2")
    parser.add_argument(
        "--bucket",
        default=None,
        help="bucket for --influx-url with influxdb-v2 (default bench_PHASE; each phase is counted by its own "
        "site tag, so one bucket for all of them counts right too)",
    )
    parser.add_argument(
        "--qos", type=int, choices=(0, 1), default=1, help="MQTT QoS of the devices (default %(default)s)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="points per message (the 200,000 points/s target is for 10) (default %(default)s)",
    )
    parser.add_argument(
        "--metrics",
        type=int,
        default=4,
        help="metrics (line protocol fields) per point; the store's cost grows with them (default %(default)s)",
    )
    parser.add_argument(
        "--messages", type=int, default=200_000, help="messages queued for the backlog drain (default %(default)s)"
    )
    parser.add_argument("--devices", type=int, default=500, help="devices publishing the backlog (default %(default)s)")
    parser.add_argument(
        "--rate", type=int, default=10_000, help="sustained load, messages/s over all devices (default %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="duration of the sustained load (default %(default)s)"
    )
    parser.add_argument(
        "--connections", type=int, default=500, help="device connections of the sustained load (default %(default)s)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="load generator processes (one drives 500 connections at 10,000 msgs/s on about a quarter of a "
        "core; it always runs outside the hub's process) (default %(default)s)",
    )
    parser.add_argument(
        "--batch-points", type=int, default=None, help="hub writer batch size in points (default: the hub's own)"
    )
    parser.add_argument(
        "--plugins",
        choices=("all", "none"),
        default="all",
        help="all: the hub as shipped (rules, incidents, cases); none: core ingest only (default %(default)s)",
    )
    parser.add_argument(
        "--compare-messages",
        type=int,
        default=None,
        help="backlog for the comparators (default: --messages, the hub's)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the hub's drain and the Node-RED flow's, alternating; the medians are reported "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        choices=("drain", "ceiling", "sustained", "compare", "node-red"),
        default=[],
        help="leave a phase out (repeatable); ceiling: the store alone, fed the same lines by a bare writer "
        "(simulators.bench.ceiling); compare: the paho+influxdb-client comparator, node-red: the Node-RED one "
        "(installed with npm into ~/.cache/gridsentinel/node-red on first use)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up on a phase after this many seconds (default %(default)s)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small run for tests: 2,000 messages, 20 connections, 2 s sustained at 1,000 msgs/s",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=None,
        metavar="SECONDS",
        help="soak mode instead of the phases: the hub in its own process under --devices x 1 msg/s for SECONDS; "
        "its RSS at the start, every minute and at the end, lost and lag (simulators.bench.soak)",
    )
    parser.set_defaults(func=run)


def _apply_quick(args: argparse.Namespace) -> None:
    args.messages = min(args.messages, 2_000)
    args.devices = min(args.devices, 20)
    args.connections = min(args.connections, 20)
    args.rate = min(args.rate, 1_000)
    args.seconds = min(args.seconds, 2.0)
    args.processes = min(args.processes, 2)
    args.timeout = min(args.timeout, 60.0)
    args.rounds = 1
    if args.compare_messages:
        args.compare_messages = min(args.compare_messages, 2_000)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the phases and return one flat result dict plus per-phase details."""
    from simulators.bench.compare import run_comparator

    if args.store is None:
        args.store = default_store()
    if args.quick:
        _apply_quick(args)
    from edge.wire import MAX_METRICS_PER_POINT, MAX_POINTS_PER_MESSAGE

    if not 1 <= args.batch <= MAX_POINTS_PER_MESSAGE:
        raise BenchError(f"--batch must be 1..{MAX_POINTS_PER_MESSAGE} (the wire contract's cap)")
    if not 1 <= args.metrics <= MAX_METRICS_PER_POINT:
        raise BenchError(f"--metrics must be 1..{MAX_METRICS_PER_POINT} (the wire contract's cap)")
    if args.soak is not None and args.soak <= 0:
        raise BenchError("--soak must be > 0 seconds")
    for name in ("messages", "devices", "rate", "connections", "processes", "compare_messages", "rounds"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be >= 1")
    if args.seconds <= 0 or args.timeout <= 0:
        raise BenchError("--seconds and --timeout must be > 0")
    result: dict[str, Any] = {
        "store": args.store,
        "qos": args.qos,
        "batch": args.batch,
        "metrics": args.metrics,
        "plugins": args.plugins,
    }
    with tempfile.TemporaryDirectory(prefix="gs-bench-ingest-") as tmp:
        workdir = Path(tmp)
        servers = start_servers(args, workdir)
        result["store_server"] = servers.store_server
        try:
            if args.soak is not None:
                from simulators.bench.soak import run_soak

                soak = run_soak(args, servers, workdir)
                result["soak"] = soak
                result.update(
                    {k: soak[k] for k in ("soak_rss_growth_pct", "lost", "lag_p99_s", "rss_start_mib", "rss_end_mib")}
                )
                return result
            run_rounds(args, servers, workdir, result)
            if "ceiling" not in args.skip:
                result["store_ceiling"] = run_store_ceiling(args, servers, workdir)
            if "sustained" not in args.skip:
                live = run_sustained(args, servers, workdir)
                result["sustained"] = live
                result.update(
                    sustained_msgs_per_s=live["sustained_msgs_per_s"],
                    lag_p50_s=live["lag_p50_s"],
                    lag_p99_s=live["lag_p99_s"],
                )
                say(f"sustained: {live['sustained_msgs_per_s']:,.0f} msgs/s, p99 lag {live['lag_p99_s']} s")
            result["lost"] = sum(d["lost"] for d in result.get("drain_rounds", ())) + (
                result["sustained"]["lost"] if "sustained" in result else 0
            )
            if "compare" not in args.skip:
                result["comparator"] = run_comparator(args, servers, workdir)
        finally:
            servers.stop()
    return result


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round whose msgs/s is the (lower) median of all rounds."""
    middle = statistics.median_low(r["msgs_per_s"] for r in rounds)
    return next(r for r in rounds if r["msgs_per_s"] == middle)


def run_rounds(args: argparse.Namespace, servers: Servers, workdir: Path, result: dict[str, Any]) -> None:
    """The hub's backlog drain and the tuned Node-RED flow's, alternating for ``--rounds`` rounds on the same
    broker and store; the median round of each goes in ``drain`` / ``comparator_node_red``, every round in
    ``drain_rounds`` / ``node_red_rounds``, and their ratio in ``hub_over_node_red``."""
    from simulators.bench.nodered import run_node_red

    hub_rounds: list[dict[str, Any]] = []
    red_rounds: list[dict[str, Any]] = []
    red_skipped = "node-red" in args.skip
    for r in range(args.rounds):
        if "drain" not in args.skip:
            drain = run_drain(args, servers, workdir, r)
            hub_rounds.append(drain)
            say(f"drain round {r + 1}: {drain['msgs_per_s']:,.0f} msgs/s, {drain['points_per_s']:,.0f} points/s")
        if not red_skipped:
            try:
                red_rounds.append(run_node_red(args, servers, workdir, r))
            except ServerError as exc:
                say(f"comparator: Node-RED not measured: {exc}")
                result["comparator_node_red"] = {"name": "Node-RED", "skipped": str(exc)}
                red_skipped = True
    if hub_rounds:
        drain = _median_round(hub_rounds)
        result["drain"] = drain
        result["drain_rounds"] = hub_rounds
        result.update(msgs_per_s=drain["msgs_per_s"], points_per_s=drain["points_per_s"])
    if red_rounds:
        result["comparator_node_red"] = _median_round(red_rounds)
        result["node_red_rounds"] = [r["msgs_per_s"] for r in red_rounds]
    if hub_rounds and red_rounds:
        result["hub_over_node_red"] = round(result["msgs_per_s"] / result["comparator_node_red"]["msgs_per_s"], 2)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else (f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, target, measured, met) rows for the table."""
    rows: list[tuple[str, str, str, str]] = []
    real = result["store"] != "embedded" and result["qos"] == 1

    def row(name: str, target: str, value: Any, ok: bool | None) -> None:
        rows.append((name, target, _fmt(value), "-" if ok is None else ("yes" if ok else "NO")))

    if "drain" in result:
        d = result["drain"]
        one, ten = result["batch"] == 1 and real, result["batch"] == 10 and real
        row(
            "drain msgs/s",
            ">= 25,000 (1 pt/msg)" if one else "",
            d["msgs_per_s"],
            d["msgs_per_s"] >= TARGET_DRAIN_MSGS_S if one else None,
        )
        row(
            "drain points/s",
            ">= 200,000 (10 pt/msg)" if ten else "",
            d["points_per_s"],
            d["points_per_s"] >= TARGET_DRAIN_POINTS_S if ten else None,
        )
        rounds = result.get("drain_rounds", [d])
        if len(rounds) > 1:
            row(f"drain msgs/s of the {len(rounds)} rounds", "", " ".join(_fmt(r["msgs_per_s"]) for r in rounds), None)
        row("drain messages", "", d["messages"], None)
        row("drain stored points", "= published", d["stored_points"], d["stored_points"] == d["points"])
        row("drain lost (all rounds)", "0", sum(r["lost"] for r in rounds), all(r["lost"] == 0 for r in rounds))
        row("hub start-up (not timed)", "", d["startup_s"], None)
        _cpu_row(row, "drain CPU-us per msg: hub / broker / store", d.get("cpu_us_per_msg"))
    if "store_ceiling" in result:
        c = result["store_ceiling"]
        row("store alone points/s (bare writer, no MQTT, no hub)", "", c["points_per_s"], None)
        if c.get("server_cpu_us_per_point") is not None:
            row("store CPU-us per point", "", c["server_cpu_us_per_point"], None)
            row("store cores needed at 200,000 points/s", "", c["cores_for_200k_points_s"], None)
        row("store alone lost", "0", c["lost"], c["lost"] == 0)
        if "drain" in result and c["points_per_s"]:
            ratio = round(result["drain"]["points_per_s"] / c["points_per_s"], 2)
            ten = result["batch"] == 10 and real
            row(
                "hub drain / store alone points/s",
                ">= 0.8 (10 pt/msg)" if ten else "",
                ratio,
                ratio >= 0.8 if ten else None,
            )
    if "soak" in result:
        k = result["soak"]
        growth = k["soak_rss_growth_pct"]
        row(
            f"soak: hub RSS MiB at start / end ({k['seconds']:,.0f} s)",
            "",
            f"{k['rss_start_mib']} / {k['rss_end_mib']}",
            None,
        )
        row(
            f"soak: hub RSS growth % from minute {k['rss_baseline_minute']} to the end",
            "< 10",
            "-" if growth is None else growth,
            None if growth is None else growth < 10.0,
        )
        row("soak: hub RSS MiB each minute", "", " ".join(f"{mib}" for _m, mib in k["rss_mib"]), None)
        row("soak: hub CPU-us per message", "", k["hub_cpu_us_per_msg"], None)
        row(
            "soak lag p99 s",
            "< 1",
            k["lag_p99_s"],
            None if k["lag_p99_s"] is None else k["lag_p99_s"] < TARGET_LAG_P99_S,
        )
        row("soak lost", "0", k["lost"], k["lost"] == 0)
    if "sustained" in result:
        s = result["sustained"]
        full = real and s["target_rate"] >= TARGET_SUSTAINED_MSGS_S and s["connections"] >= 500
        row(
            "sustained msgs/s published",
            f">= {s['target_rate']:,}",
            s["sustained_msgs_per_s"],
            s["sustained_msgs_per_s"] >= 0.97 * s["target_rate"],
        )
        row("sustained msgs/s stored (end to end)", "", s["stored_msgs_per_s"], None)
        row(
            "sustained connections",
            ">= 500" if full else "",
            s["connections"],
            s["connections"] >= 500 if full else None,
        )
        row("lag p50 s", "", s["lag_p50_s"], None)
        row("lag p99 s", "< 1", s["lag_p99_s"], s["lag_p99_s"] < TARGET_LAG_P99_S)
        row("sustained lost", "0", s["lost"], s["lost"] == 0)
    for key in ("comparator", "comparator_node_red"):
        c = result.get(key)
        if c is None:
            continue
        if "skipped" in c:
            row(f"comparator ({c['name']})", "", "not measured", None)
            continue
        row(f"comparator drain msgs/s ({c['name']}, {c['messages']:,} msgs)", "", c["msgs_per_s"], None)
        row(f"comparator points/s ({c['name']})", "", c["points_per_s"], None)
        row(f"comparator lost ({c['name']})", "", c["lost"], None)
        peer = "Node-RED" if key == "comparator_node_red" else c["name"]
        _cpu_row(row, f"comparator CPU-us per msg: {peer} / broker / store", c.get("cpu_us_per_msg"))
    if result.get("node_red_rounds"):
        rounds = result["node_red_rounds"]
        row(f"Node-RED msgs/s of the {len(rounds)} rounds", "", " ".join(_fmt(float(v)) for v in rounds), None)
    if "hub_over_node_red" in result:
        one = result["batch"] == 1 and real
        ratio = result["hub_over_node_red"]
        row(
            "hub / Node-RED drain msgs/s (medians, same run)",
            ">= 1.5 (1 pt/msg)" if one else "",
            ratio,
            ratio >= 1.5 if one else None,
        )
    return rows


def _cpu_row(row: Callable[[str, str, Any, bool | None], None], name: str, cpu: dict[str, Any] | None) -> None:
    if cpu:
        row(
            name,
            "",
            " / ".join("-" if cpu.get(k) is None else f"{cpu[k]:.1f}" for k in ("pipeline", "broker", "store")),
            None,
        )


def print_table(result: dict[str, Any]) -> None:
    """The human-readable summary."""
    print(
        f"gridsentinel bench ingest: store {result['store']} ({result['store_server']}), QoS {result['qos']}, "
        f"{result['batch']} point(s)/message of {result['metrics']} metric(s), plug-ins {result['plugins']}"
    )
    rows = [("measure", "target", "measured", "met"), *table_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for key in ("comparator", "comparator_node_red"):
        c = result.get(key)
        if c is not None:
            print(f"comparator {c['name']}: {c.get('description') or c.get('skipped')}")
            if c.get("first_error"):
                print(f"comparator {c['name']}: {c['errors_logged']:,} errors logged; the first: {c['first_error']}")
    note = ceiling_note(result)
    if note:
        print(note)


def ceiling_note(result: dict[str, Any]) -> str | None:
    """What the store's own CPU per point leaves of this machine at the points target (None when the
    store's CPU was not measured, or the run is not the 10-point one the target is for)."""
    c = result.get("store_ceiling")
    if not c or c.get("cores_for_200k_points_s") is None or result["batch"] != 10:
        return None
    cores = os.cpu_count() or 1
    need = c["cores_for_200k_points_s"]
    head = (
        f"store alone: {c['server_cpu_us_per_point']} CPU-us per point of {c['fields_per_point']} fields: "
        f"{TARGET_DRAIN_POINTS_S:,.0f} points/s take {need} of this machine's {cores} cores in the store alone"
    )
    left = cores - need
    if left <= 0:
        return head + ", more than there are"
    msgs = TARGET_DRAIN_POINTS_S / result["batch"]
    return (
        f"{head}, leaving {left:.2f} cores -- {left / msgs * 1e6:.0f} CPU-us per {result['batch']}-point message at "
        f"{msgs:,.0f} msgs/s -- for the broker and the whole hub"
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print a table (or JSON); exit 1 when anything was lost."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    if root.level > logging.DEBUG:  # hub INFO logs would bury the progress lines; --log-level DEBUG keeps them
        root.setLevel(logging.WARNING)
    # SIGTERM unwinds like Ctrl-C, so the servers the bench started are stopped and its temp dir removed.
    previous = (
        signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        result = measure(args)
    except (BenchError, ServerError) as exc:
        print(f"gridsentinel bench ingest: {exc}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if args.json:
        print(json.dumps(result, allow_nan=False, default=str) if _finite(result) else json.dumps(_nulls(result)))
    else:
        print_table(result)
    return 1 if result.get("lost") else 0


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def _nulls(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    return value
