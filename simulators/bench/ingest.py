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
(simulators.bench.nodered). The store alone (simulators.bench.ceiling: the same lines by a bare
writer) is the ceiling the drain is held against. The hub's drain, the store alone and Node-RED's
drain alternate for ``--rounds`` rounds on the same broker and store, and medians are compared:
a store busy with its own compactions, or a machine busy with other work, then weighs on every
side alike instead of on whichever phase it fell into. Each drain reports the CPU per message of the pipeline,
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
from pathlib import Path
from typing import Any

from simulators.bench.ingest_setup import (
    MEASUREMENT,
    STORES,
    BenchError,
    hub_settings,
    load_spec,
    open_probe,
    plugins_of,
    stored_points,
    wait_acked,
)
from simulators.bench.ingest_table import print_table
from simulators.bench.util import (
    ProcessCpu,
    Servers,
    default_store,
    forget_session,
    prime_session,
    say,
    start_hub_quietly,
    start_servers,
)
from simulators.servers import ServerError

logger = logging.getLogger(__name__)


def run_drain(args: argparse.Namespace, servers: Servers, workdir: Path, round_no: int = 0) -> dict[str, Any]:
    """Queue N messages for the stopped hub, start it, time until the store acknowledged every point
    (``round_no`` gives each round its own site, database and session)."""
    from hub.ingest.pipeline import ingest_filters
    from hub.service import Hub, tune_gc
    from simulators.loadgen import run_load

    phase = f"drain{round_no or ''}"
    settings = hub_settings(args, servers, phase, workdir)
    prime_session(servers.mqtt_url, settings.client_id, ingest_filters(settings.root, None), args.qos)
    spec = load_spec(args, servers.mqtt_url, site=phase, messages=args.messages, rate=0.0, devices=args.devices)
    say(f"drain: queueing {spec.messages:,} messages x {spec.points} points from {spec.devices} devices")
    load = run_load(spec)
    expected = load.messages * spec.points
    say(f"drain: {load.messages:,} queued at the broker ({load.msgs_per_s:,.0f} msgs/s); starting the hub")
    probe = open_probe(settings, track_lag=False)
    hub = Hub(settings, store=probe, plugins=plugins_of(args))
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
        wait_acked(probe, expected, args.timeout, received, "drain")
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


def run_store_ceiling(args: argparse.Namespace, servers: Servers, workdir: Path, round_no: int = 0) -> dict[str, Any]:
    """The store alone, fed the lines the drain's hub wrote by a bare writer (simulators.bench.ceiling);
    ``round_no`` gives each round its own site and database."""
    from simulators.bench.ceiling import run_ceiling

    phase = f"ceiling{round_no or ''}"
    settings = hub_settings(args, servers, phase, workdir)
    probe = open_probe(settings, track_lag=False)
    try:
        return run_ceiling(
            servers,
            probe.inner,
            site=phase,
            measurement=MEASUREMENT,
            messages=args.messages,
            devices=args.devices,
            points=args.batch,
            metrics=args.metrics,
            batch=settings.series_settings().batch_points,
            count=lambda expected: stored_points(servers, probe, phase, expected),
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

    settings = hub_settings(args, servers, "live", workdir)
    probe = open_probe(settings, track_lag=True)
    hub = Hub(settings, store=probe, plugins=plugins_of(args))
    messages = int(args.rate * args.seconds)
    spec = load_spec(
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

        wait_acked(probe, expected, args.timeout, received, "sustained")
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
        help="rounds of the hub's drain, the store alone and the Node-RED flow's drain, alternating; the "
        "medians are reported (default %(default)s)",
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


def _median_of(rounds: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The round whose ``key`` is the (lower) median of all rounds."""
    middle = statistics.median_low(r[key] for r in rounds)
    return next(r for r in rounds if r[key] == middle)


def run_rounds(args: argparse.Namespace, servers: Servers, workdir: Path, result: dict[str, Any]) -> None:
    """The hub's backlog drain, the store alone and the tuned Node-RED flow's drain, alternating for
    ``--rounds`` rounds on the same broker and store. The median round of each goes in ``drain`` /
    ``store_ceiling`` / ``comparator_node_red``, every round in ``drain_rounds`` / ``store_ceiling_rounds``
    / ``node_red_rounds``, and the ratios of the medians in ``hub_over_store_alone`` and ``hub_over_node_red``."""
    from simulators.bench.nodered import run_node_red

    hub_rounds: list[dict[str, Any]] = []
    alone_rounds: list[dict[str, Any]] = []
    red_rounds: list[dict[str, Any]] = []
    red_skipped = "node-red" in args.skip
    for r in range(args.rounds):
        if "drain" not in args.skip:
            drain = run_drain(args, servers, workdir, r)
            hub_rounds.append(drain)
            say(f"drain round {r + 1}: {drain['msgs_per_s']:,.0f} msgs/s, {drain['points_per_s']:,.0f} points/s")
        if "ceiling" not in args.skip:
            alone_rounds.append(run_store_ceiling(args, servers, workdir, r))
        if not red_skipped:
            try:
                red_rounds.append(run_node_red(args, servers, workdir, r))
            except ServerError as exc:
                say(f"comparator: Node-RED not measured: {exc}")
                result["comparator_node_red"] = {"name": "Node-RED", "skipped": str(exc)}
                red_skipped = True
    if hub_rounds:
        drain = _median_of(hub_rounds, "msgs_per_s")
        result["drain"] = drain
        result["drain_rounds"] = hub_rounds
        result.update(msgs_per_s=drain["msgs_per_s"], points_per_s=drain["points_per_s"])
    if alone_rounds:
        result["store_ceiling"] = _median_of(alone_rounds, "points_per_s")
        result["store_ceiling_rounds"] = [r["points_per_s"] for r in alone_rounds]
    if hub_rounds and alone_rounds and result["store_ceiling"]["points_per_s"]:
        result["hub_over_store_alone"] = round(result["points_per_s"] / result["store_ceiling"]["points_per_s"], 3)
    if red_rounds:
        result["comparator_node_red"] = _median_of(red_rounds, "msgs_per_s")
        result["node_red_rounds"] = [r["msgs_per_s"] for r in red_rounds]
    if hub_rounds and red_rounds:
        result["hub_over_node_red"] = round(result["msgs_per_s"] / result["comparator_node_red"]["msgs_per_s"], 2)


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
