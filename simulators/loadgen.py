"""A lightweight MQTT load generator for benchmarks (not the simulator path: no agent, no outbox).

It publishes valid :mod:`edge.wire` telemetry for many device ids at a target rate,
one MQTT 3.1.1 connection per device (client id = device id, clean session). Each
worker process drives all its connections on raw non-blocking sockets from one
selector: packets come from the hub's codec (:mod:`hub.mqtt.codec`), many publishes to
one connection go out in one ``send``, and PUBACKs are read from a read buffer. One process sustains 10,000
msgs/s from 500 connections on a small fraction of a core, so the default is one
process; ``--processes`` spreads the devices over more (spawned) processes.

Device timestamps are the send time in ms (strictly increasing per device), ``seq``
counts from ``seq_start`` per device, and the result reports messages sent and the
highest seq per device so a bench can check that every ``(device, seq)`` arrived once.

    python -m simulators.loadgen --url mqtt://127.0.0.1:1883 --devices 500 \\
        --messages 100000 --rate 10000 --qos 1 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import queue
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from edge import wire
from simulators.loadgen_worker import host_port, process_main, run_worker
from simulators.loadspec import LoadError, LoadResult, LoadSpec, TelemetryTemplate, expected_telemetry

__all__ = [
    "LoadError",
    "LoadResult",
    "LoadSpec",
    "TelemetryTemplate",
    "add_arguments",
    "expected_telemetry",
    "main",
    "run_args",
    "run_load",
]

logger = logging.getLogger(__name__)


def _merge(parts: list[dict[str, Any]]) -> LoadResult:
    result = LoadResult()
    for part in parts:
        result.sent.update(part["sent"])
        result.max_seq.update(part["max_seq"])
        result.acked += part["acked"]
        result.elapsed_s = max(result.elapsed_s, part["elapsed_s"])
        result.connect_s = max(result.connect_s, part["connect_s"])
        result.drain_s = max(result.drain_s, part["drain_s"])
        result.connections += part["connections"]
    return result


def _check_spec(spec: LoadSpec) -> None:
    if spec.devices < 1 or spec.messages < 0 or spec.processes < 1 or spec.qos not in (0, 1) or spec.rate < 0:
        raise LoadError(f"bad spec {spec}: need devices>=1, messages>=0, processes>=1, rate>=0, qos 0 or 1")
    if not 1 <= spec.points <= wire.MAX_POINTS_PER_MESSAGE or not 1 <= spec.metrics <= wire.MAX_METRICS_PER_POINT:
        raise LoadError(
            f"points must be 1..{wire.MAX_POINTS_PER_MESSAGE} and metrics 1..{wire.MAX_METRICS_PER_POINT}"
            f" (the wire contract's caps), not {spec.points} and {spec.metrics}"
        )
    host_port(spec.url)
    # the largest message of the run must still be valid telemetry on a valid topic
    top = spec.seq_start + -(-spec.messages // spec.devices)
    try:
        wire.topic(spec.site, spec.device_ids()[-1], wire.Channel.TELEMETRY, root=spec.root)
        sample = TelemetryTemplate(spec.points, spec.metrics).payload(top, int(time.time() * 1000))
        wire.decode(wire.Channel.TELEMETRY, sample)
    except (wire.WireError, ValueError) as exc:
        raise LoadError(f"the spec gives invalid telemetry: {exc}") from exc


def _report(channel: Any, workers: Sequence[Any], deadline: float, what: str) -> Any:
    """The next report on ``channel``; a worker that died without one (or the deadline) raises."""
    while True:
        try:
            return channel.get(timeout=0.2)
        except queue.Empty:
            crashed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if crashed:
                raise LoadError(f"a load worker exited with code {crashed[0]} before it reported {what}") from None
            if time.monotonic() > deadline:
                raise LoadError(f"a load worker did not report {what} in time") from None


def run_load(spec: LoadSpec) -> LoadResult:
    """Publish ``spec.messages`` across ``spec.devices`` and return what was sent (raises :class:`LoadError`)."""
    _check_spec(spec)
    ids = spec.device_ids()
    procs = min(spec.processes, len(ids))
    # messages are dealt round-robin to devices, so each process gets its devices' share
    shares = [ids[i::procs] for i in range(procs)]
    base, extra = divmod(spec.messages, len(ids))
    counts = [base * len(share) + sum(1 for k in range(i, extra, procs)) for i, share in enumerate(shares)]
    if procs == 1 and not spec.isolate:
        return _merge([run_worker(spec, shares[0], counts[0], None, None)])
    ctx = multiprocessing.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [
        ctx.Process(target=process_main, args=(spec, shares[i], counts[i], (ready, go, out)), daemon=True)
        for i in range(procs)
    ]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + spec.connect_timeout_s + 30.0  # spawn and imports come first
        for _ in workers:
            if _report(ready, workers, deadline, "connected") < 0:
                break
        go.set()
        deadline = time.monotonic() + spec.drain_timeout_s + (spec.messages / spec.rate if spec.rate else 0) + 3600.0
        results = [_report(out, workers, deadline, "its result") for _ in workers]
    finally:
        go.set()
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.terminate()
    errors = [detail for status, detail in results if status != "ok"]
    if errors:
        raise LoadError("; ".join(errors))
    return _merge([detail for _status, detail in results])


def build_parser() -> argparse.ArgumentParser:
    """Command-line options mirroring :class:`LoadSpec`."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.loadgen",
        description=__doc__.split("\n")[0],
        epilog="One process drives 500 connections at 10,000 msgs/s on a small fraction of a core; "
        "msgs_per_s is the publishing phase (flat out: how fast messages were handed to the sockets), "
        "completed_msgs_per_s includes the drain until the broker acknowledged (or took) everything.",
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options (shared with ``gridsentinel sim load``)."""
    defaults = LoadSpec()
    parser.add_argument("--url", default=defaults.url, help="broker, mqtt://host:port (loopback only in tests)")
    parser.add_argument("--devices", type=int, default=defaults.devices, help="device ids = MQTT connections")
    parser.add_argument("--messages", type=int, default=defaults.messages, help="total telemetry messages")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="target msgs/s in total; 0 = flat out")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=defaults.qos, help="MQTT QoS")
    parser.add_argument("--points", type=int, default=defaults.points, help="points per message")
    parser.add_argument("--metrics", type=int, default=defaults.metrics, help="metrics per point")
    parser.add_argument(
        "--processes", type=int, default=defaults.processes, help="worker processes the devices are spread over"
    )
    parser.add_argument("--site", default=defaults.site, help="site id in the topics")
    parser.add_argument("--device-prefix", default=defaults.device_prefix, help="device ids are PREFIX-00000...")
    parser.add_argument("--seq-start", type=int, default=defaults.seq_start, help="first seq of every device")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load generator from the command line."""
    return run_args(build_parser().parse_args(argv))


def run_args(args: argparse.Namespace) -> int:
    """Run with parsed options (see :func:`add_arguments`)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    spec = LoadSpec(
        url=args.url,
        devices=args.devices,
        messages=args.messages,
        rate=args.rate,
        qos=args.qos,
        points=args.points,
        metrics=args.metrics,
        processes=args.processes,
        site=args.site,
        device_prefix=args.device_prefix,
        seq_start=args.seq_start,
    )
    try:
        result = run_load(spec)
    except LoadError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 1
    summary = {
        "messages": result.messages,
        "acked": result.acked,
        "devices": len(result.sent),
        "connections": result.connections,
        "processes": spec.processes,
        "qos": spec.qos,
        "points_per_msg": spec.points,
        "connect_s": round(result.connect_s, 3),
        "elapsed_s": round(result.elapsed_s, 3),
        "drain_s": round(result.drain_s, 3),
        "msgs_per_s": round(result.msgs_per_s, 1),
        "completed_msgs_per_s": round(result.completed_msgs_per_s, 1),
        "target_rate": spec.rate,
    }
    if args.json:
        print(json.dumps({**summary, "spec": asdict(spec)}))
    else:
        for key, value in summary.items():
            print(f"{key:<22} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
