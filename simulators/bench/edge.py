"""``gridsentinel bench edge``: outbox enqueue rate, outbox -> broker drain rate, agent RSS.

Starts a real mosquitto on a free loopback port when the binary exists (else
give ``--mqtt-url``). Targets: drain >= 10,000 msg/s; steady RSS <= 60 MB for
an agent with 10 simulated sensors at 1 Hz, measured in a subprocess that
imports only the edge agent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from simulators.servers import UNLIMITED_MOSQUITTO_CONF, MissingBinary, Mosquitto

TARGET_DRAIN = 10_000.0
TARGET_RSS_MB = 60.0

_RSS_SCRIPT = textwrap.dedent(
    """
    import json, logging, math, sys, time
    from typing import Literal
    from edge.drivers import DriverConfigBase, Sample, register_driver

    class BenchSensorConfig(DriverConfigBase):
        type: Literal["bench_sensor"] = "bench_sensor"

    class BenchSensor:
        def __init__(self, config):
            self.n = 0
        def poll(self, now_ms):
            self.n += 1
            return Sample({"temp_c": 20 + math.sin(self.n / 10), "humidity": 50.0, "battery": 3.7, "rssi": -60})
        def close(self):
            pass

    register_driver("bench_sensor", BenchSensorConfig, BenchSensor, "bench")
    from edge.agent import Agent
    from edge.config import parse_config

    url, db, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    logging.basicConfig(level=logging.WARNING)
    cfg = parse_config({
        "device": {"id": "bench-1", "site": "bench", "kind": "sensor"},
        "mqtt": {"url": url},
        "outbox": {"path": db},
        "drivers": [{"type": "bench_sensor", "interval_s": 1.0} for _ in range(10)],
        "rules": [{"metric": "temp_c", "type": "overheat", "above": 60}],
    })
    agent = Agent(cfg)
    agent.start()
    time.sleep(seconds)
    rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) / 1024
    stats = agent.outbox.stats()
    agent.stop()
    print(json.dumps({"rss_mb": round(rss, 1), "sent": stats.sent, "pending": stats.pending}))
    """
)


def _telemetry(seq: int) -> Any:
    from edge import wire

    ts = int(time.time() * 1000)
    return wire.Telemetry(seq=seq, ts=ts, points=(wire.Point(ts, {"temp_c": 21.5, "humidity": 48.0, "n": seq}),))


def bench_enqueue(workdir: Path, count: int) -> tuple[float, float]:
    """Messages per second stored one per transaction (one poll = one transaction) in a SqliteOutbox."""
    from edge.outbox import SqliteOutbox

    box = SqliteOutbox(workdir / "enqueue.db")
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(count):
        box.enqueue([_telemetry], int(time.time() * 1000))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    box.close()
    return count / elapsed, count / max(cpu, 1e-9)


def bench_drain(workdir: Path, url: str, count: int, max_inflight: int) -> tuple[float, float, int]:
    """Wall-clock and per-CPU-second rates from a pre-filled SqliteOutbox to the broker, until all are acked."""
    from edge.config import DeviceConfig, MqttConfig
    from edge.outbox import SqliteOutbox
    from edge.publisher import Publisher

    box = SqliteOutbox(workdir / "drain.db")
    batch = 1000
    for _ in range(count // batch):
        box.enqueue([_telemetry] * batch, int(time.time() * 1000))
    device = DeviceConfig.model_validate({"id": "bench-drain", "site": "bench", "kind": "sensor"})
    mqtt = MqttConfig.model_validate({"url": url, "max_inflight": max_inflight})
    publisher = Publisher(device, mqtt, box, epoch=box.begin_session(), hist_after_s=3600)
    start, cpu_start = time.perf_counter(), time.process_time()
    publisher.start()
    deadline = time.monotonic() + 120
    while box.stats().pending > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    left = box.stats().pending
    publisher.stop()
    box.close()
    return (count - left) / elapsed, (count - left) / max(cpu, 1e-9), left


def bench_rss(workdir: Path, url: str, seconds: float) -> dict[str, Any]:
    """RSS of a fresh interpreter running one agent with 10 simulated sensors at 1 Hz."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, url, str(workdir / "rss.db"), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(args: argparse.Namespace) -> int:
    """Run the edge benchmarks and print a table or one JSON object."""
    import logging

    logging.getLogger("edge").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="gs-bench-edge-") as tmp:
        workdir = Path(tmp)
        broker = None
        url = args.mqtt_url
        if url is None:
            try:
                broker = Mosquitto(workdir / "mosquitto", persistence=False, limits=UNLIMITED_MOSQUITTO_CONF)
                broker.start(timeout=10)
            except MissingBinary:
                print("no mosquitto binary: install it or pass --mqtt-url", file=sys.stderr)
                return 2
            url = broker.url
        try:
            enqueue, enqueue_cpu = bench_enqueue(workdir, args.enqueue_count)
            drain, drain_cpu, left = bench_drain(workdir, url, args.drain_count, args.max_inflight)
            rss = bench_rss(workdir, url, args.rss_seconds)
        finally:
            if broker is not None:
                broker.stop()
    result = {
        "enqueue_msgs_per_s": round(enqueue),
        "enqueue_msgs_per_cpu_s": round(enqueue_cpu),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "drain_msgs_per_s": round(drain),
        "drain_msgs_per_cpu_s": round(drain_cpu),
        "drain_messages": args.drain_count,
        "drain_unacked": left,
        "max_inflight": args.max_inflight,
        "rss_mb": rss["rss_mb"],
        "rss_steady_s": args.rss_seconds,
        "rss_sent": rss["sent"],
        "drain_target_met": drain >= TARGET_DRAIN and left == 0,
        "rss_target_met": rss["rss_mb"] <= TARGET_RSS_MB,
    }
    if args.json:
        print(json.dumps(result))
    else:
        rows = [
            ("outbox enqueue (1 msg/txn, SQLite WAL)", f"{result['enqueue_msgs_per_s']:,} msg/s", "-"),
            ("  same, per CPU second of the agent", f"{result['enqueue_msgs_per_cpu_s']:,} msg/s", "-"),
            (
                f"drain {args.drain_count:,} -> broker (inflight {args.max_inflight})",
                f"{result['drain_msgs_per_s']:,} msg/s",
                f">= {TARGET_DRAIN:,.0f}",
            ),
            ("  same, per CPU second of the agent", f"{result['drain_msgs_per_cpu_s']:,} msg/s", "-"),
            (
                f"agent RSS, 10 sensors @1 Hz after {args.rss_seconds:.0f}s",
                f"{rss['rss_mb']} MB",
                f"<= {TARGET_RSS_MB}",
            ),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"{'measure':<{width}}  {'result':>16}  target")
        for name, value, target in rows:
            print(f"{name:<{width}}  {value:>16}  {target}")
        print(f"(1-minute load average {result['load_avg_1m']} on {os.cpu_count()} CPUs)")
    return 0 if result["drain_target_met"] and result["rss_target_met"] else 1


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gridsentinel bench edge``."""
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--mqtt-url", default=None, help="broker to use instead of starting mosquitto")
    parser.add_argument("--enqueue-count", type=int, default=5_000, help="messages for the enqueue rate")
    parser.add_argument("--drain-count", type=int, default=50_000, help="messages pre-filled for the drain rate")
    parser.add_argument("--max-inflight", type=int, default=100, help="publisher in-flight window for the drain")
    parser.add_argument("--rss-seconds", type=float, default=15.0, help="steady period before reading RSS")
    parser.set_defaults(func=run)
