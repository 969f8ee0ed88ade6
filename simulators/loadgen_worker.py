"""The load generator's I/O shell: one worker drives its devices' MQTT connections on raw non-blocking
sockets from one selector (packets from the hub's codec, many publishes to one connection in one ``send``,
PUBACKs recognised in bulk in the read buffer). :func:`run_worker` runs one in this process,
:func:`process_main` in a spawned child that reports back over queues.
"""

from __future__ import annotations

import logging
import selectors
import socket
import time
from collections.abc import Sequence
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
from simulators.loadspec import LoadError, LoadSpec, TelemetryTemplate

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


class Connection:
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


class Worker:
    """Drives ``device_ids``' connections on one selector: connect, publish ``count`` messages, drain."""

    def __init__(self, spec: LoadSpec, device_ids: Sequence[str]) -> None:
        self.spec = spec
        self.conns = [
            Connection(d, wire.topic(spec.site, d, wire.Channel.TELEMETRY, root=spec.root)) for d in device_ids
        ]
        self.template = TelemetryTemplate(spec.points, spec.metrics)
        self.sel = selectors.DefaultSelector()
        self.connacked = 0
        self.acked = 0
        self.writing = 0

    # --- socket events

    def _flush(self, conn: Connection) -> None:
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

    def _acked(self, conn: Connection, pids: list[int]) -> None:
        inflight = conn.inflight
        for pid in pids:
            if pid not in inflight:
                raise LoadError(f"{conn.device_id}: PUBACK for packet id {pid}, which is not in flight")
            inflight.remove(pid)
        conn.acked += len(pids)
        self.acked += len(pids)

    def _read(self, conn: Connection) -> None:
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
        host, port = host_port(self.spec.url)
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

    def _publish(self, conn: Connection, now_ms: int) -> None:
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


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise LoadError(f"url {url!r} must look like mqtt://host:port")
    return parts.hostname, parts.port or 1883


def run_worker(spec: LoadSpec, device_ids: list[str], count: int, ready: Any, go: Any) -> dict[str, Any]:
    worker = Worker(spec, device_ids)
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


def process_main(spec: LoadSpec, device_ids: list[str], count: int, channels: tuple[Any, Any, Any]) -> None:
    ready, go, out = channels
    try:
        out.put(("ok", run_worker(spec, device_ids, count, ready, go)))
    except Exception as exc:  # the worker's loop boundary: report to the parent instead of dying silently
        logger.exception("load worker failed")
        ready.put(-1)
        out.put(("error", str(exc) if isinstance(exc, LoadError) else f"{type(exc).__name__}: {exc}"))
