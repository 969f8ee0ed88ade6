"""``gridsentinel bench cluster``: three hub replicas on a 3-node NATS cluster, one killed mid-run.

What it measures (one run, real servers on loopback: 3 nats-server nodes, PostgreSQL, influxd):

1. **Cluster.** Three ``hub run --cluster`` replicas own the partitions. The load generator
   (:mod:`simulators.loadgen`, the wire contract over MQTT, QoS 1) publishes ``--messages`` from
   ``--devices`` to the NATS nodes' MQTT listeners at ``--rate``; when ``--kill-at`` of them are out,
   the replica owning the most partitions is killed with SIGKILL. ``takeover_s`` is the time from
   the kill until every partition it held is held by a survivor (the lease bucket says so);
   ``msgs_per_s`` is messages over the time from the first publish until every point is in
   InfluxDB; ``lost`` counts published points not in InfluxDB; ``duplicates`` counts points stored
   more than once (InfluxDB keeps one point per series and timestamp, so this is a check of the
   writes, 0 by construction, not of ingest); ``redelivered`` counts messages the survivors got
   again after the kill and dropped as already stored (their dedup counter). ``cpu_us_per_msg`` is
   the replicas' CPU (the killed one up to its kill) per message; ``nats_cpu_us_per_msg`` the three
   NATS nodes'.
2. **Single hub.** The same load into one ``hub run --mqtt-url`` hub on Mosquitto, same PostgreSQL
   and influxd: ``single_cpu_us_per_msg`` (the hub's CPU) and ``single_msgs_per_s``.

On a 2-core machine the figures are correctness and overhead, not speed-up: every process of both
setups shares the same two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from hub.db import make_engine
from hub.schema import init_schema
from simulators.bench.util import cpu_seconds, say
from simulators.loadgen import LoadResult, LoadSpec, run_load
from simulators.servers import INFLUX_DB, Influxd, Mosquitto, Postgres
from simulators.servers.nats import NatsCluster, ReplicaProcess, lease_holders, stop_replicas


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--replicas", type=int, default=3, help="hub replicas (default %(default)s)")
    parser.add_argument("--partitions", type=int, default=12, help="partitions (default %(default)s)")
    parser.add_argument("--devices", type=int, default=200, help="devices (default %(default)s)")
    parser.add_argument("--messages", type=int, default=20_000, help="messages per phase (default %(default)s)")
    parser.add_argument("--rate", type=float, default=2_000, help="publish rate, msgs/s (default %(default)s)")
    parser.add_argument(
        "--kill-at", type=float, default=0.4, help="fraction of the run after which a replica is killed"
    )
    parser.set_defaults(func=run)


def _partition_owners(cluster: NatsCluster) -> dict[int, str]:
    held = asyncio.run(lease_holders(cluster.live_urls(), [f"part.{p}" for p in range(cluster.partitions)]))
    return {int(k.split(".")[1]): v for k, v in held.items() if k.startswith("part.")}


def _stored(influx: Influxd, site: str) -> dict[str, int]:
    """Device -> points stored for the bench's devices of ``site`` (count per device)."""
    # The load generator's devices send no status, so their kind -- the measurement -- is "unknown"
    # (the hub also writes device_status points per device, which are not the devices' points).
    body = influx.query(f'SELECT count(*) FROM "unknown" WHERE "site" = \'{site}\' GROUP BY "device"')
    out: dict[str, int] = {}
    for result in body.get("results", []):
        for series in result.get("series", []):
            device = str(series.get("tags", {}).get("device", ""))
            counts = [v for v in series["values"][0][1:] if isinstance(v, int)]
            out[device] = out.get(device, 0) + (max(counts) if counts else 0)
    return out


def _wait_stored(influx: Influxd, site: str, expected: int, timeout: float) -> tuple[float, int]:
    """Wait until ``expected`` points of ``site`` are stored; (monotonic time it happened, points stored)."""
    deadline = time.monotonic() + timeout
    stored = 0
    while time.monotonic() < deadline:
        stored = sum(_stored(influx, site).values())
        if stored >= expected:
            return time.monotonic(), stored
        time.sleep(0.25)
    return time.monotonic(), stored


def _metric(base_url: str, name: str) -> float:
    try:
        text = httpx.get(f"{base_url}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _load(spec: LoadSpec, out: dict[str, Any]) -> None:
    try:
        out["result"] = run_load(spec)
    except Exception as exc:  # reported by the caller
        out["error"] = exc


def cluster_phase(args: argparse.Namespace, work: Path, pg_url: str, influx: Influxd) -> dict[str, Any]:
    """Replicas on a NATS cluster, one killed mid-run."""
    cluster = NatsCluster(work / "nats", partitions=args.partitions)
    cluster.start()
    replicas = [
        ReplicaProcess(
            f"bench-r{i}",
            work / f"r{i}",
            cluster.client_urls,
            pg_url,
            partitions=args.partitions,
            influx=(influx.url, INFLUX_DB),
        )
        for i in range(args.replicas)
    ]
    try:
        replicas[0].launch()
        replicas[0].wait_ready()
        for r in replicas[1:]:
            r.launch()
        for r in replicas[1:]:
            r.wait_ready()
        deadline = time.monotonic() + 30
        while (
            len(set(_partition_owners(cluster).values())) < args.replicas
            or len(_partition_owners(cluster)) < args.partitions
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("partitions not spread over the replicas within 30 s")
            time.sleep(0.2)
        say(f"{args.replicas} replicas own {args.partitions} partitions", "cluster")
        cpu0 = {r.replica_id: cpu_seconds(r.pid) or 0.0 for r in replicas}
        nats_pids = [p.pid for p in cluster.procs.values() if p is not None]
        nats0 = sum(cpu_seconds(pid) or 0.0 for pid in nats_pids)
        spec = LoadSpec(
            url=cluster.nodes[0].mqtt_url,
            devices=args.devices,
            messages=args.messages,
            rate=args.rate,
            site="cluster",
            device_prefix="cl",
            drain_timeout_s=120,
        )
        out: dict[str, Any] = {}
        started = time.monotonic()
        loader = threading.Thread(target=_load, args=(spec, out), daemon=True)
        loader.start()
        time.sleep(args.kill_at * args.messages / args.rate)
        owners = _partition_owners(cluster)
        victim = max(replicas, key=lambda r: sum(1 for v in owners.values() if v == r.replica_id))
        theirs = {p for p, o in owners.items() if o == victim.replica_id}
        victim_cpu = (cpu_seconds(victim.pid) or 0.0) - cpu0[victim.replica_id]
        victim.kill()
        killed = time.monotonic()
        say(f"killed {victim.replica_id} (partitions {sorted(theirs)})", "cluster")
        takeover_s = None
        while time.monotonic() - killed < 60:
            now = _partition_owners(cluster)
            if all(now.get(p) not in (None, victim.replica_id) for p in theirs):
                takeover_s = time.monotonic() - killed
                break
            time.sleep(0.1)
        loader.join(300)
        if "error" in out:
            raise RuntimeError(f"load generator failed: {out['error']}")
        result: LoadResult = out["result"]
        done, stored = _wait_stored(influx, "cluster", result.messages, 120)
        per_device = _stored(influx, "cluster")
        survivors = [r for r in replicas if r is not victim]
        cpu = victim_cpu + sum((cpu_seconds(r.pid) or 0.0) - cpu0[r.replica_id] for r in survivors)
        nats_cpu = sum(cpu_seconds(pid) or 0.0 for pid in nats_pids) - nats0
        redelivered = sum(_metric(r.base_url, "gs_dedup_duplicates_total") for r in survivors)
        lost = sum(max(0, result.sent.get(d, 0) - per_device.get(d, 0)) for d in result.sent)
        dupes = sum(max(0, per_device.get(d, 0) - result.sent.get(d, 0)) for d in per_device)
        return {
            "msgs": result.messages,
            "msgs_per_s": round(result.messages / (done - started), 1),
            "takeover_s": None if takeover_s is None else round(takeover_s, 2),
            "lost": lost,
            "duplicates": dupes,
            "redelivered": int(redelivered),
            "stored": stored,
            "cpu_us_per_msg": round(cpu / result.messages * 1e6, 1),
            "nats_cpu_us_per_msg": round(nats_cpu / result.messages * 1e6, 1),
        }
    finally:
        stop_replicas(replicas)
        cluster.stop()


def single_phase(args: argparse.Namespace, work: Path, pg_url: str, influx: Influxd) -> dict[str, Any]:
    """One hub on Mosquitto, the same load."""
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    hub = ReplicaProcess(
        "bench-single", work / "single", broker.url, pg_url, partitions=0, influx=(influx.url, INFLUX_DB)
    )
    try:
        hub.launch()
        hub.wait_ready()
        cpu0 = cpu_seconds(hub.pid) or 0.0
        spec = LoadSpec(
            url=broker.url, devices=args.devices, messages=args.messages, rate=args.rate, site="single",
            device_prefix="sg", drain_timeout_s=120,
        )  # fmt: skip
        started = time.monotonic()
        result = run_load(spec)
        done, stored = _wait_stored(influx, "single", result.messages, 120)
        cpu = (cpu_seconds(hub.pid) or 0.0) - cpu0
        return {
            "single_msgs_per_s": round(result.messages / (done - started), 1),
            "single_lost": max(0, result.messages - stored),
            "single_cpu_us_per_msg": round(cpu / result.messages * 1e6, 1),
        }
    finally:
        hub.stop()
        broker.stop()


def run(args: argparse.Namespace) -> int:
    """Run both phases and print the figures."""

    with tempfile.TemporaryDirectory(prefix="gs-cluster-bench-") as tmp:
        work = Path(tmp)
        pg = Postgres()
        influx = Influxd(work / "influx", db=INFLUX_DB)
        try:
            pg.start()
            influx.start()
            urls = {}
            for name in ("cluster", "single"):
                urls[name] = pg.create_database(name=f"gs_bench_{name}")
                engine = make_engine(urls[name])
                init_schema(engine)
                engine.dispose()
            figures: dict[str, Any] = {"replicas": args.replicas, "partitions": args.partitions}
            figures["devices"] = args.devices
            figures["rate"] = args.rate
            figures.update(cluster_phase(args, work, urls["cluster"], influx))
            figures.update(single_phase(args, work, urls["single"], influx))
        finally:
            influx.stop()
            pg.stop()
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>24}  {value}")
    ok = figures["lost"] == 0 and figures["duplicates"] == 0 and figures["takeover_s"] is not None
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m simulators.bench.cluster``."""
    parser = argparse.ArgumentParser(prog="gridsentinel bench cluster")
    configure(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
