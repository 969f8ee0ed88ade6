"""A lightweight MQTT load generator for benchmarks (not the simulator path: no agent, no outbox).

It publishes valid :mod:`edge.wire` telemetry for many device ids at a target rate,
one paho connection per device (client id = device id) spread over several
processes -- one Python process handles a few hundred connections, so 500 devices
want 2-4 processes. Each process drives all its sockets from one thread: paho
writes on ``publish`` and an epoll selector services PUBACKs, so nothing is
throttled by per-client threads. Device timestamps are the send time (strictly
increasing per device), ``seq`` counts from ``seq_start`` per device, and the
result reports messages sent and the highest seq per device so a bench can check
that every ``(device, seq)`` arrived once.

    python -m simulators.loadgen --url mqtt://127.0.0.1:1883 --devices 500 \\
        --messages 100000 --rate 10000 --processes 4 --qos 1 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import queue
import selectors
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from edge import wire

logger = logging.getLogger(__name__)


class LoadError(RuntimeError):
    """The load run could not connect or did not finish within its deadline."""


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What to publish, how fast, and over how many connections and processes."""

    url: str = "mqtt://127.0.0.1:1883"
    devices: int = 100
    messages: int = 10_000
    rate: float = 0.0  # messages per second over all devices; 0 = as fast as possible
    qos: int = 1
    points: int = 1
    metrics: int = 4
    processes: int = 1
    site: str = "load"
    device_prefix: str = "load"
    root: str = wire.DEFAULT_ROOT
    seq_start: int = 1
    connect_timeout_s: float = 30.0
    drain_timeout_s: float = 60.0

    def device_ids(self) -> list[str]:
        """The device ids in order."""
        return [f"{self.device_prefix}-{i:05d}" for i in range(self.devices)]


@dataclass(slots=True)
class LoadResult:
    """What was sent: per-device counts and highest seq, totals and timing."""

    sent: dict[str, int] = field(default_factory=dict)
    max_seq: dict[str, int] = field(default_factory=dict)
    acked: int = 0
    elapsed_s: float = 0.0
    drain_s: float = 0.0  # after the last publish until every PUBACK (QoS 1) or write (QoS 0)
    connect_s: float = 0.0
    connections: int = 0

    @property
    def messages(self) -> int:
        """Messages published in total."""
        return sum(self.sent.values())

    @property
    def msgs_per_s(self) -> float:
        """Publish rate achieved (publishing phase only)."""
        return self.messages / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise LoadError(f"url {url!r} must look like mqtt://host:port")
    return parts.hostname, parts.port or 1883


class _Connection:
    """One paho client for one device, serviced by the worker's selector."""

    def __init__(self, device_id: str, spec: LoadSpec) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.device_id = device_id
        self.topic = wire.topic(spec.site, device_id, wire.Channel.TELEMETRY, root=spec.root)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=True)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.connected = False
        self.acked = 0
        self.sock: Any = None
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected = not reason.is_failure
        if reason.is_failure:
            logger.error("%s: connect refused: %s", self.device_id, reason)

    def _on_publish(self, *_args: Any) -> None:
        self.acked += 1


def _service(sel: selectors.BaseSelector, conns: Sequence[_Connection], timeout: float) -> None:
    for key, _mask in sel.select(timeout):
        key.data.client.loop_read()
    for conn in conns:
        if conn.client.want_write():
            conn.client.loop_write()


def _run_worker(spec: LoadSpec, device_ids: list[str], count: int, ready: Any, go: Any) -> dict[str, Any]:
    host, port = _host_port(spec.url)
    sel = selectors.DefaultSelector()
    conns = [_Connection(d, spec) for d in device_ids]
    started = time.monotonic()
    for conn in conns:
        conn.client.connect(host, port, keepalive=120)
        conn.sock = conn.client.socket()
        sel.register(conn.sock, selectors.EVENT_READ, conn)
    deadline = started + spec.connect_timeout_s
    while not all(c.connected for c in conns):
        if time.monotonic() > deadline:
            raise LoadError(
                f"{sum(not c.connected for c in conns)} connections not accepted in {spec.connect_timeout_s}s"
            )
        _service(sel, conns, 0.05)
    connect_s = time.monotonic() - started
    if ready is not None:
        ready.put(len(conns))
        go.wait()
    sent = dict.fromkeys(device_ids, 0)
    last_ts = dict.fromkeys(device_ids, 0)
    rate = spec.rate / max(1, spec.processes) if spec.rate > 0 else 0.0
    t0 = time.monotonic()
    for n in range(count):
        if rate:
            due = t0 + n / rate
            while (now := time.monotonic()) < due:
                _service(sel, conns, min(0.01, due - now))
        elif n % 200 == 0:
            _service(sel, conns, 0)
        conn = conns[n % len(conns)]
        device = conn.device_id
        ts = max(int(time.time() * 1000), last_ts[device] + spec.points)
        last_ts[device] = ts
        seq = spec.seq_start + sent[device]
        points = tuple(
            wire.Point(ts - (spec.points - 1 - k), {f"m{j}": float((seq + j + k) % 1000) for j in range(spec.metrics)})
            for k in range(spec.points)
        )
        payload = wire.encode(wire.Telemetry(seq=seq, ts=ts, points=points))
        conn.client.publish(conn.topic, payload, qos=spec.qos)
        sent[device] += 1
    elapsed = time.monotonic() - t0
    deadline = time.monotonic() + spec.drain_timeout_s
    if spec.qos > 0:
        while sum(c.acked for c in conns) < count:
            if time.monotonic() > deadline:
                raise LoadError(f"only {sum(c.acked for c in conns)}/{count} PUBACKs within {spec.drain_timeout_s}s")
            _service(sel, conns, 0.02)
    else:
        while any(c.client.want_write() for c in conns) and time.monotonic() < deadline:
            _service(sel, conns, 0.01)
    drain_s = time.monotonic() - t0 - elapsed
    for conn in conns:
        sel.unregister(conn.sock)
        conn.client.disconnect()
    sel.close()
    return {
        "sent": sent,
        "max_seq": {d: spec.seq_start + k - 1 for d, k in sent.items() if k},
        "acked": sum(c.acked for c in conns),
        "elapsed_s": elapsed,
        "drain_s": drain_s,
        "connect_s": connect_s,
        "connections": len(conns),
    }


def _process_main(spec: LoadSpec, device_ids: list[str], count: int, channels: tuple[Any, Any, Any]) -> None:
    ready, go, out = channels
    try:
        out.put(("ok", _run_worker(spec, device_ids, count, ready, go)))
    except Exception as exc:  # the worker's loop boundary: report to the parent instead of dying silently
        logger.exception("load worker failed")
        ready.put(-1)
        out.put(("error", f"{type(exc).__name__}: {exc}"))


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


def run_load(spec: LoadSpec) -> LoadResult:
    """Publish ``spec.messages`` across ``spec.devices`` and return what was sent (raises :class:`LoadError`)."""
    if spec.devices < 1 or spec.messages < 0 or spec.processes < 1 or spec.points < 1 or spec.qos not in (0, 1):
        raise LoadError(f"bad spec {spec}: need devices>=1, messages>=0, processes>=1, points>=1, qos 0 or 1")
    ids = spec.device_ids()
    procs = min(spec.processes, len(ids))
    # messages are dealt round-robin to devices, so each process gets its devices' share
    shares = [ids[i::procs] for i in range(procs)]
    counts = [sum(1 for n in range(spec.messages) if n % len(ids) % procs == i) for i in range(procs)]
    if procs == 1:
        return _merge([_run_worker(spec, shares[0], counts[0], None, None)])
    ctx = multiprocessing.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [
        ctx.Process(target=_process_main, args=(spec, shares[i], counts[i], (ready, go, out)), daemon=True)
        for i in range(procs)
    ]
    for worker in workers:
        worker.start()
    try:
        timeout = spec.connect_timeout_s + 30.0  # spawn and imports come first
        for _ in workers:
            if ready.get(timeout=timeout) < 0:
                break
        go.set()
        results = [out.get(timeout=spec.connect_timeout_s + spec.drain_timeout_s + 3600.0) for _ in workers]
    except queue.Empty as exc:
        raise LoadError("a load worker did not report in time") from exc
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
    parser = argparse.ArgumentParser(prog="python -m simulators.loadgen", description=__doc__.split("\n")[0])
    defaults = LoadSpec()
    parser.add_argument("--url", default=defaults.url, help="broker, mqtt://host:port (loopback only in tests)")
    parser.add_argument("--devices", type=int, default=defaults.devices, help="device ids = MQTT connections")
    parser.add_argument("--messages", type=int, default=defaults.messages, help="total telemetry messages")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="target msgs/s in total; 0 = flat out")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=defaults.qos, help="MQTT QoS")
    parser.add_argument("--points", type=int, default=defaults.points, help="points per message")
    parser.add_argument("--metrics", type=int, default=defaults.metrics, help="metrics per point")
    parser.add_argument("--processes", type=int, default=defaults.processes, help="worker processes")
    parser.add_argument("--site", default=defaults.site, help="site id in the topics")
    parser.add_argument("--device-prefix", default=defaults.device_prefix, help="device ids are PREFIX-00000...")
    parser.add_argument("--seq-start", type=int, default=defaults.seq_start, help="first seq of every device")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load generator from the command line."""
    args = build_parser().parse_args(argv)
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
        "target_rate": spec.rate,
    }
    if args.json:
        print(json.dumps({**summary, "spec": asdict(spec)}))
    else:
        for key, value in summary.items():
            print(f"{key:<16} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
