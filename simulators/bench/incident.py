"""``gridsentinel bench incident``: event published -> incident stored, under background telemetry.

Starts a mosquitto on a free loopback port (or uses ``--mqtt-url``), a real hub with the
incidents plug-in writing its series to a real influxd (``--store``; the embedded SQLite
store when influxd is not installed), a background load generator at ``--rate``
telemetry messages/s over ``--devices`` devices in its own process, then publishes
``--probes`` smoke events from fresh devices. Latency is measured from just before publish until the
hub's bus reports the incident stored (published after the DB commit).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TARGET_P99_MS = 250.0


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rate", type=int, default=10_000, help="background telemetry messages per second")
    parser.add_argument("--devices", type=int, default=500, help="background devices")
    parser.add_argument("--probes", type=int, default=200, help="alarm events to time")
    parser.add_argument("--probe-rate", type=float, default=20.0, help="alarm events per second")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="background load before the first probe")
    parser.add_argument("--mqtt-url", default=None, help="use this broker instead of starting mosquitto")
    parser.add_argument(
        "--store",
        choices=("embedded", "influxdb-v1"),
        default=None,
        help="series store of the hub: influxdb-v1 starts influxd (the default when it is installed: "
        "production hubs write to InfluxDB), embedded is the demo's SQLite store",
    )
    parser.set_defaults(func=run)


def _start_mosquitto(workdir: Path) -> Any:
    """A no-drop mosquitto (``simulators.servers``), or None when not installed (the embedded broker is used)."""
    from simulators.servers import Mosquitto, ServerError

    try:
        server = Mosquitto(workdir / "mosquitto", persistence=False)
        server.start()
    except ServerError as exc:
        logger.warning("%s; using the hub's embedded broker", exc)
        return None
    return server


def _client(url: str, client_id: str) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.max_queued_messages_set(0)
    client.connect(host, int(port), keepalive=60)
    client.loop_start()
    return client


def _background(url: str, rate: int, devices: int, seconds: float, out: list[Any]) -> None:
    """Publish telemetry at ``rate`` msgs/s for ``seconds`` (QoS 0, the lossy high-rate class).

    The raw-socket load generator in its own process, so it does not compete with the hub for the GIL.
    """
    from simulators.loadgen import LoadSpec, run_load

    spec = LoadSpec(
        url=url,
        devices=devices,
        messages=max(1, int(rate * seconds)),
        rate=float(rate),
        qos=0,
        site="bench",
        device_prefix="load",
        isolate=True,
        connect_timeout_s=60.0,
    )
    try:
        out.append(run_load(spec))
    except Exception as exc:  # reported in the result, not a crash of the bench thread
        logger.error("background load failed: %s", exc)
        out.append(exc)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    from edge import wire
    from hub.config import HubSettings
    from hub.service import Hub, tune_gc
    from simulators.bench.util import Servers, start_hub_quietly
    from simulators.servers import Influxd

    servers = Servers(workdir, store=args.store)  # what we start, stopped in reverse order
    # gap timeout: QoS 0 background loss is not what this bench measures
    settings: dict[str, Any] = {
        "http_port": 0,
        "data_dir": workdir / "hub",
        "client_id": "bench-hub",
        "gap_timeout_s": 3600.0,
    }
    try:
        broker = None if args.mqtt_url else _start_mosquitto(workdir)
        if broker is not None:
            servers.started.append(broker)
        url = args.mqtt_url or (broker.url if broker is not None else None)
        settings |= {"mqtt_url": url} if url else {"broker_port": 0}
        if args.store == "influxdb-v1":
            influxd = Influxd(workdir / "influxd")
            influxd.start()
            servers.started.append(influxd)
            settings |= {"series_backend": "influxdb-v1", "series_url": influxd.url, "series_db": "bench_incident"}
        hub = Hub(HubSettings.model_validate(settings), plugins=("hub.incidents.plugin",))
        start_hub_quietly(hub)
    except BaseException:
        servers.stop()
        raise
    tune_gc()  # as `gridsentinel hub run` does
    assert hub.ctx is not None and hub.ingest is not None
    broker_url = url or f"mqtt://{hub.mqtt_host}:{hub.mqtt_port}"
    stored: dict[str, float] = {}
    sub = hub.ctx.bus.subscribe(maxlen=100_000)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for ev in sub.get(0.1):
                if ev.kind == "incident" and ev.data.get("change") == "opened":
                    stored.setdefault(str(ev.data.get("device_id")), time.perf_counter())

    watcher = threading.Thread(target=watch, name="bench-watch", daemon=True)
    watcher.start()
    deadline = time.monotonic() + 10
    while not hub.ingest.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    background_s = args.warmup_s + args.probes / args.probe_rate + 2.0
    loads: list[Any] = []
    load = threading.Thread(
        target=_background, args=(broker_url, args.rate, args.devices, background_s, loads), daemon=True
    )
    before = sum(hub.stats.messages.values())
    t_load = time.perf_counter()
    load.start()
    started_by = time.monotonic() + 60  # the generator connects its devices first
    while sum(hub.stats.messages.values()) - before < args.rate / 2 and time.monotonic() < started_by:
        time.sleep(0.05)
    time.sleep(args.warmup_s)
    prober = _client(broker_url, "bench-probe")
    published: dict[str, float] = {}
    try:
        for i in range(args.probes):
            device = f"probe-{i:05d}"
            ev = wire.Event(
                1, int(time.time() * 1000), f"p{i}", "smoke", wire.EventState.ACTIVE, wire.Severity.CRITICAL
            )
            published[device] = time.perf_counter()
            prober.publish(wire.topic("bench", device, wire.Channel.EVENT), wire.encode(ev), qos=1)
            time.sleep(1 / args.probe_rate)
        wait_until = time.monotonic() + 10
        while len(stored) < len(published) and time.monotonic() < wait_until:
            time.sleep(0.05)
    finally:
        ingested = sum(hub.stats.messages.values()) - before
        window_s = time.perf_counter() - t_load
        stop.set()
        load.join(background_s + 120)
        prober.disconnect()
        prober.loop_stop()
        watcher.join(2)
        hub.stop()
        servers.stop()
    latencies = [(stored[d] - t0) * 1000 for d, t0 in published.items() if d in stored]
    result: dict[str, Any] = {
        "store": "influxdb-v1" if args.store == "influxdb-v1" else "embedded",
        "broker": "mosquitto" if broker is not None else ("external" if args.mqtt_url else "embedded"),
        "probes": len(published),
        "probes_stored": len(latencies),
        "incident_latency_p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "incident_latency_p99_ms": round(_percentile(latencies, 0.99), 2) if latencies else None,
        "incident_latency_max_ms": round(max(latencies), 2) if latencies else None,
        "background_target_msgs_s": args.rate,
        "background_sent_msgs_s": round(loads[0].msgs_per_s) if loads and not isinstance(loads[0], Exception) else 0,
        "hub_ingested_msgs_s": round(ingested / window_s),
        "target_p99_ms": TARGET_P99_MS,
    }
    p99 = result["incident_latency_p99_ms"]
    result["p99_ok"] = p99 is not None and p99 < TARGET_P99_MS and result["probes_stored"] == result["probes"]
    return result


def run(args: argparse.Namespace) -> int:
    """Run and print a table or JSON."""
    from simulators.bench.util import default_store
    from simulators.servers import ServerError

    logging.basicConfig(level=logging.WARNING)
    if args.store is None:
        args.store = default_store()
    with tempfile.TemporaryDirectory(prefix="gs-bench-incident-") as tmp:
        try:
            result = measure(args, Path(tmp))
        except ServerError as exc:
            print(f"gridsentinel bench incident: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0 if result["probes_stored"] == result["probes"] else 1
