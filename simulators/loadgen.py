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
import selectors
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from edge import wire
from hub.mqtt.codec import FrameBuffer, decode_body, encode, publish_header
from hub.mqtt.packets import (
    Connack,
    Connect,
    Disconnect,
    MalformedPacketError,
    Pingreq,
    Pingresp,
    Puback,
    connack_reason,
)

logger = logging.getLogger(__name__)

#: MQTT keepalive sent in CONNECT; idle connections send PINGREQ well within it.
KEEPALIVE_S: Final = 120
PING_EVERY_S: Final = 50.0
#: QoS 1 publishes awaiting PUBACK per connection: the generator never outruns the broker by more.
MAX_INFLIGHT: Final = 1000
#: Bytes waiting to be written per connection (bounds QoS 0, which has no acknowledgements).
MAX_BUFFERED: Final = 1 << 20
#: With a target rate, wake up this often and send what is due (small bursts, few system calls).
TICK_S: Final = 0.002
#: Flat out, queue this many messages per connection before writing (one send carries them all).
FLAT_ROUNDS: Final = 16
#: Paced, read PUBACKs this often (they wait in the socket buffer; fewer, fuller reads).
READ_EVERY_S: Final = 0.25
RECV_BYTES: Final = 16 * 1024  # under malloc's mmap threshold: a bigger read buffer costs mmap+mremap+munmap per read
#: Connections opened but not yet CONNACKed, at most.
MAX_CONNECTING: Final = 32

_PINGREQ: Final = encode(Pingreq())
_DISCONNECT: Final = encode(Disconnect())
#: A read of nothing but whole PUBACKs (the usual one) is recognised by these, without framing it.
_PUBACK_TYPES: Final = b"\x40" * (RECV_BYTES // 4)
_PUBACK_LENGTHS: Final = b"\x02" * (RECV_BYTES // 4)
_READ, _READ_WRITE = selectors.EVENT_READ, selectors.EVENT_READ | selectors.EVENT_WRITE


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
    isolate: bool = False  # run even a single worker in a child process (off the caller's GIL)

    def device_ids(self) -> list[str]:
        """The device ids in order."""
        return [f"{self.device_prefix}-{i:05d}" for i in range(self.devices)]


@dataclass(slots=True)
class LoadResult:
    """What was sent: per-device counts and highest seq, totals and timing."""

    sent: dict[str, int] = field(default_factory=dict)
    max_seq: dict[str, int] = field(default_factory=dict)
    acked: int = 0  # PUBACKs (QoS 1) or messages fully written (QoS 0)
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

    @property
    def completed_msgs_per_s(self) -> float:
        """Rate until the broker had everything (PUBACKs or writes): flat out, the broker's pace."""
        total = self.elapsed_s + self.drain_s
        return self.messages / total if total > 0 else 0.0


# ------------------------------------------------------------------ pure: payloads


def expected_telemetry(seq: int, ts: int, points: int, metrics: int) -> wire.Telemetry:
    """The message :class:`TelemetryTemplate` encodes for ``(seq, ts)`` (the reference for tests)."""
    return wire.Telemetry(
        seq=seq,
        ts=ts,
        points=tuple(
            wire.Point(ts - (points - 1 - k), {f"m{j}": float((seq + j + k) % 1000) for j in range(metrics)})
            for k in range(points)
        ),
    )


class TelemetryTemplate:
    """Telemetry payloads by string formatting: the bytes ``wire.encode`` gives, ~10x cheaper.

    Point ``k`` of the message ``(seq, ts)`` has ts ``ts - (points - 1 - k)`` and metrics
    ``m{j} = float((seq + j + k) % 1000)``; the metric objects for the 1,000 residues are built once.
    """

    def __init__(self, points: int, metrics: int) -> None:
        self.points = points
        self._metrics = [",".join(f'"m{j}":{float((r + j) % 1000)!r}' for j in range(metrics)) for r in range(1000)]

    def payload(self, seq: int, ts: int) -> bytes:
        """The JSON payload of message ``(seq, ts)``."""
        m = self._metrics
        if self.points == 1:
            return f'{{"v":1,"seq":{seq},"ts":{ts},"metrics":{{{m[seq % 1000]}}}}}'.encode()
        last = self.points - 1
        pts = ",".join(f'{{"ts":{ts - last + k},"metrics":{{{m[(seq + k) % 1000]}}}}}' for k in range(self.points))
        return f'{{"v":1,"seq":{seq},"ts":{ts},"points":[{pts}]}}'.encode()


# ------------------------------------------------------------------ I/O shell: one worker


class _Connection:
    """One device's socket, buffers and QoS 1 packet ids."""

    __slots__ = (
        "acked",
        "connack",
        "device_id",
        "frames",
        "inflight",
        "last_ts",
        "next_pid",
        "out",
        "ping_mark",
        "sent",
        "sock",
        "topic",
        "writing",
    )

    def __init__(self, device_id: str, topic: str) -> None:
        self.device_id = device_id
        self.topic = topic.encode()  # encoded once
        self.sock: socket.socket | None = None
        self.out = bytearray()
        self.frames = FrameBuffer()
        self.inflight: set[int] = set()
        self.next_pid = 1
        self.connack: int | None = None
        self.writing = False  # EVENT_WRITE registered: the socket was full
        self.sent = 0
        self.acked = 0
        self.last_ts = 0
        self.ping_mark = -1

    def next_packet_id(self) -> int:
        """1..65535, wrapping, skipping ids still awaiting their PUBACK."""
        pid = self.next_pid
        while pid in self.inflight:
            pid = pid % 0xFFFF + 1
        self.next_pid = pid % 0xFFFF + 1
        self.inflight.add(pid)
        return pid


class _Worker:
    """Drives ``device_ids``' connections on one selector: connect, publish ``count`` messages, drain."""

    def __init__(self, spec: LoadSpec, device_ids: Sequence[str]) -> None:
        self.spec = spec
        self.conns = [
            _Connection(d, wire.topic(spec.site, d, wire.Channel.TELEMETRY, root=spec.root)) for d in device_ids
        ]
        self.template = TelemetryTemplate(spec.points, spec.metrics)
        self.sel = selectors.DefaultSelector()
        self.connacked = 0
        self.acked = 0
        self.writing = 0

    # --- socket events

    def _flush(self, conn: _Connection) -> None:
        sock = conn.sock
        assert sock is not None
        try:
            n = sock.send(conn.out)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            raise LoadError(f"{conn.device_id}: send failed: {exc}") from exc
        if n:
            del conn.out[:n]
        if conn.out and not conn.writing:
            self.sel.modify(sock, _READ_WRITE, conn)
            conn.writing, self.writing = True, self.writing + 1
        elif not conn.out and conn.writing:
            self.sel.modify(sock, _READ, conn)
            conn.writing, self.writing = False, self.writing - 1

    def _acked(self, conn: _Connection, pids: list[int]) -> None:
        inflight = conn.inflight
        for pid in pids:
            if pid not in inflight:
                raise LoadError(f"{conn.device_id}: PUBACK for packet id {pid}, which is not in flight")
            inflight.remove(pid)
        conn.acked += len(pids)
        self.acked += len(pids)

    def _read(self, conn: _Connection) -> None:
        assert conn.sock is not None
        try:
            data = conn.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            raise LoadError(f"{conn.device_id}: connection lost: {exc}") from exc
        if not data:
            raise LoadError(f"{conn.device_id}: the broker closed the connection")
        data = conn.frames.feed(data)
        whole = len(data) >> 2
        if not len(data) & 3 and data[::4] == _PUBACK_TYPES[:whole] and data[1::4] == _PUBACK_LENGTHS[:whole]:
            # the usual read: nothing but whole PUBACKs; the slices checked every frame's 0x40 0x02 header
            self._acked(conn, [data[i] << 8 | data[i + 1] for i in range(2, len(data), 4)])
            return
        try:
            packets = [decode_body(header, body) for header, body in conn.frames.split(data)]
        except MalformedPacketError as exc:
            raise LoadError(f"{conn.device_id}: malformed packet from the broker: {exc}") from exc
        for packet in packets:
            match packet:
                case Puback(packet_id=packet_id):
                    self._acked(conn, [packet_id])
                case Connack(return_code=code) if conn.connack is None:
                    conn.connack = code
                    if code:
                        raise LoadError(f"{conn.device_id}: {connack_reason(code)}")
                    self.connacked += 1
                case Pingresp():
                    pass
                case _:
                    raise LoadError(f"{conn.device_id}: unexpected {type(packet).__name__} from the broker")

    def _poll(self, timeout: float) -> None:
        for key, mask in self.sel.select(timeout):
            conn = key.data
            if mask & selectors.EVENT_READ:
                self._read(conn)
            if mask & selectors.EVENT_WRITE:
                self._flush(conn)

    def _ping_idle(self) -> None:
        for conn in self.conns:  # nothing sent since the last round: keep the session alive
            if conn.sent == conn.ping_mark and not conn.out:
                conn.out += _PINGREQ
                self._flush(conn)
            conn.ping_mark = conn.sent

    # --- phases

    def connect(self) -> float:
        """Open every connection and wait for every CONNACK; the seconds it took."""
        host, port = _host_port(self.spec.url)
        started = time.monotonic()
        deadline = started + self.spec.connect_timeout_s
        for opened, conn in enumerate(self.conns, 1):
            try:
                sock = socket.create_connection((host, port), timeout=max(0.1, deadline - time.monotonic()))
            except OSError as exc:
                raise LoadError(f"{conn.device_id}: cannot connect to {host}:{port}: {exc}") from exc
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sock = sock
            self.sel.register(sock, _READ, conn)
            conn.out += encode(Connect(conn.device_id, clean_session=True, keepalive=KEEPALIVE_S))
            self._flush(conn)
            # a few handshakes at a time: a full accept queue drops SYNs and costs a 1 s retransmit
            self._await_connacks(opened - MAX_CONNECTING, deadline)
        self._await_connacks(len(self.conns), deadline)
        return time.monotonic() - started

    def _await_connacks(self, wanted: int, deadline: float) -> None:
        while self.connacked < wanted:
            if time.monotonic() > deadline:
                missing = [c.device_id for c in self.conns if c.sock is not None and c.connack is None]
                raise LoadError(
                    f"{len(missing)} connections got no CONNACK within {self.spec.connect_timeout_s}s"
                    f" (first: {missing[0]})"
                )
            self._poll(0.05)

    def _publish(self, conn: _Connection, now_ms: int) -> None:
        spec = self.spec
        seq = spec.seq_start + conn.sent
        ts = max(now_ms, conn.last_ts + spec.points)  # the previous message's last point stays strictly older
        conn.last_ts = ts
        payload = self.template.payload(seq, ts)
        if spec.qos:
            conn.out += publish_header(conn.topic, 1, conn.next_packet_id(), len(payload))
        else:
            conn.out += publish_header(conn.topic, 0, None, len(payload))
        conn.out += payload
        conn.sent += 1

    def publish(self, count: int, rate: float) -> float:
        """Publish ``count`` messages round-robin over the connections, paced at ``rate`` (0 = flat out)."""
        conns, total = self.conns, len(self.conns)
        n = 0
        t0 = time.monotonic()
        next_ping = t0 + PING_EVERY_S
        next_read = t0
        while n < count:
            now = time.monotonic()
            target = min(count, int((now - t0) * rate) + 1 if rate else n + total * FLAT_ROUNDS)
            blocked = False
            if target > n:
                now_ms = int(time.time() * 1000)
                first = n
                while n < target:
                    conn = conns[n % total]
                    if len(conn.inflight) >= MAX_INFLIGHT or len(conn.out) >= MAX_BUFFERED:
                        blocked = True
                        break
                    self._publish(conn, now_ms)
                    n += 1
                for i in range(first, min(n, first + total)):
                    conn = conns[i % total]
                    if conn.out and not conn.writing:
                        self._flush(conn)
            if n >= count:
                break
            if blocked:
                self._poll(0.05)  # woken by the PUBACK or write room it waits for
            elif not rate:
                self._poll(0)
            else:
                # paced: sleep to the next burst instead of waking per PUBACK; read them in batches
                if now >= next_read or self.writing:
                    self._poll(0)
                    next_read = now + READ_EVERY_S
                time.sleep(max(TICK_S, t0 + n / rate - time.monotonic()))
            if now > next_ping:
                self._ping_idle()
                next_ping = now + PING_EVERY_S
        return time.monotonic() - t0

    def drain(self, count: int) -> float:
        """Wait until every byte is written and, with QoS 1, every PUBACK is in; the seconds it took."""
        started = time.monotonic()
        deadline = started + self.spec.drain_timeout_s
        next_ping = started + PING_EVERY_S
        while self.writing or (self.spec.qos and self.acked < count):
            now = time.monotonic()
            if now > deadline:
                unsent = sum(len(c.out) for c in self.conns)
                raise LoadError(
                    f"only {self.acked}/{count} PUBACKs and {unsent} bytes unsent after {self.spec.drain_timeout_s}s"
                    if self.spec.qos
                    else f"{unsent} bytes still unsent after {self.spec.drain_timeout_s}s"
                )
            self._poll(0.02)
            if now > next_ping:
                self._ping_idle()
                next_ping = now + PING_EVERY_S
        if not self.spec.qos:
            self.acked = count
        return time.monotonic() - started

    def close(self) -> None:
        """DISCONNECT and close every socket."""
        for conn in self.conns:
            if conn.sock is None:
                continue
            try:
                conn.sock.send(_DISCONNECT)
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # closing anyway; a refused or lost connection already raised LoadError
            self.sel.unregister(conn.sock)
            conn.sock.close()
            conn.sock = None
        self.sel.close()


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise LoadError(f"url {url!r} must look like mqtt://host:port")
    return parts.hostname, parts.port or 1883


def _run_worker(spec: LoadSpec, device_ids: list[str], count: int, ready: Any, go: Any) -> dict[str, Any]:
    worker = _Worker(spec, device_ids)
    try:
        connect_s = worker.connect()
        if ready is not None:
            ready.put(len(worker.conns))
            go.wait()
        rate = spec.rate * count / spec.messages if spec.rate > 0 and spec.messages else 0.0
        elapsed = worker.publish(count, rate)
        drain_s = worker.drain(count)
    finally:
        worker.close()
    if worker.acked != count:
        raise LoadError(f"{worker.acked} of {count} messages acknowledged")
    return {
        "sent": {c.device_id: c.sent for c in worker.conns},
        "max_seq": {c.device_id: spec.seq_start + c.sent - 1 for c in worker.conns if c.sent},
        "acked": worker.acked,
        "elapsed_s": elapsed,
        "drain_s": drain_s,
        "connect_s": connect_s,
        "connections": len(worker.conns),
    }


def _process_main(spec: LoadSpec, device_ids: list[str], count: int, channels: tuple[Any, Any, Any]) -> None:
    ready, go, out = channels
    try:
        out.put(("ok", _run_worker(spec, device_ids, count, ready, go)))
    except Exception as exc:  # the worker's loop boundary: report to the parent instead of dying silently
        logger.exception("load worker failed")
        ready.put(-1)
        out.put(("error", str(exc) if isinstance(exc, LoadError) else f"{type(exc).__name__}: {exc}"))


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
    _host_port(spec.url)
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
