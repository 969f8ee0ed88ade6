"""Per-client state: the output side of a connection and the session that outlives it.

A :class:`Session` holds subscriptions, QoS 1/2 messages in flight and a bounded
queue of messages waiting for a window slot (or for the client to come back, when
``clean_session=0``). A :class:`ClientOutput` batches writes per event-loop turn and
reports congestion so a slow subscriber never makes the broker grow without bound:
QoS 0 is dropped while congested, QoS 1/2 waits in the bounded queue (oldest dropped
on overflow, always with a warning carrying the count).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from hub.mqtt.codec import PUBREL_HEAD, publish_header

logger = logging.getLogger(__name__)

#: Seconds between two "dropped" warnings for the same session.
DROP_LOG_INTERVAL = 1.0


@dataclass(slots=True)
class Message:
    """One application message as routed by the broker."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    topic_bytes: bytes = b""

    def __post_init__(self) -> None:
        if not self.topic_bytes:
            self.topic_bytes = self.topic.encode("utf-8")


@dataclass(slots=True)
class Outgoing:
    """A QoS 1/2 message queued for, or in flight to, one session."""

    message: Message
    qos: int
    retain: bool
    packet_id: int = 0
    #: QoS 2 only: PUBREC received and PUBREL sent.
    released: bool = False


@dataclass(slots=True)
class DropCounters:
    """Messages a session had to drop, and how many of them are not logged yet."""

    qos0: int = 0
    queued: int = 0
    unlogged_qos0: int = 0
    unlogged_queued: int = 0
    last_log: float = 0.0


class ClientOutput:
    """Buffered, congestion-aware writes to one client's transport."""

    __slots__ = ("_loop", "_resume_task", "buffered", "chunks", "closed", "high_water", "on_resume", "writer")

    def __init__(self, writer: asyncio.StreamWriter, high_water: int) -> None:
        self.writer = writer
        self.high_water = high_water
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.closed = False
        self.on_resume: Session | None = None
        self._loop = asyncio.get_running_loop()
        self._resume_task: asyncio.Task[None] | None = None
        writer.transport.set_write_buffer_limits(high=high_water, low=high_water // 4)

    def send(self, data: bytes) -> None:
        """Queue ``data``; it is written in one batch at the end of this event-loop turn."""
        if self.closed:
            return
        if not self.chunks:
            self._loop.call_soon(self.flush)
        self.chunks.append(data)
        self.buffered += len(data)

    def send_publish(self, out: Message, qos: int, retain: bool, packet_id: int | None, dup: bool = False) -> None:
        """Queue a PUBLISH of ``out``."""
        self.send(publish_header(out.topic_bytes, qos, packet_id, len(out.payload), retain=retain, dup=dup))
        if out.payload:
            self.send(out.payload)

    def flush(self) -> None:
        """Hand the batched bytes to the transport."""
        if not self.chunks:
            return
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        self.buffered = 0
        if not self.closed and not self.writer.transport.is_closing():
            self.writer.transport.write(data)

    def congested(self) -> bool:
        """True when the client is not reading fast enough to take more now."""
        return self.buffered + self.writer.transport.get_write_buffer_size() >= self.high_water

    def request_resume(self) -> None:
        """Pump the session again once the transport has drained."""
        if self._resume_task is None and not self.closed:
            self._resume_task = self._loop.create_task(self._resume())

    async def _resume(self) -> None:
        try:
            self.flush()
            await self.writer.drain()
        except (ConnectionError, OSError):
            return
        finally:
            self._resume_task = None
        if self.on_resume is not None and not self.closed:
            self.on_resume.pump()

    def close(self) -> None:
        """Stop writing and drop the connection at once."""
        self.closed = True
        self.chunks = []
        self.on_resume = None
        if self._resume_task is not None:
            self._resume_task.cancel()
        self.writer.transport.abort()


@dataclass(eq=False)
class Session:
    """What the broker keeps for one client id."""

    client_id: str
    clean: bool
    max_inflight: int
    max_queued: int
    #: Bound on the payload bytes waiting in ``pending`` (big messages hit this before ``max_queued``).
    max_queued_bytes: int = 256 * 1024 * 1024
    subscriptions: dict[str, int] = field(default_factory=dict)
    pending: deque[Outgoing] = field(default_factory=deque)
    inflight: dict[int, Outgoing] = field(default_factory=dict)
    #: Packet ids of QoS 2 messages received from the client and not yet released.
    incoming_qos2: set[int] = field(default_factory=set)
    output: ClientOutput | None = None
    drops: DropCounters = field(default_factory=DropCounters)
    next_id: int = 0
    pending_bytes: int = 0

    @property
    def online(self) -> bool:
        """True while a connection is attached."""
        return self.output is not None

    def deliver(self, message: Message, qos: int, retain: bool = False) -> bool:
        """Send or queue ``message`` at ``qos``; False when it had to be dropped."""
        output = self.output
        if qos == 0:
            if output is None:
                return False
            if output.congested():
                self.drops.qos0 += 1
                self.drops.unlogged_qos0 += 1
                self._log_drops()
                output.request_resume()
                return False
            output.send_publish(message, 0, retain, None)
            return True
        out = Outgoing(message, qos, retain)
        if output is not None and not self.pending and len(self.inflight) < self.max_inflight:
            if not output.congested():
                self._send_new(output, out)
                return True
            output.request_resume()
        return self._enqueue(out)

    def _enqueue(self, out: Outgoing) -> bool:
        pending = self.pending
        pending.append(out)
        self.pending_bytes += len(out.message.payload)
        dropped = 0
        while len(pending) > self.max_queued or (self.pending_bytes > self.max_queued_bytes and len(pending) > 1):
            self.pending_bytes -= len(pending.popleft().message.payload)
            dropped += 1
        if dropped:
            self.drops.queued += dropped
            self.drops.unlogged_queued += dropped
            self._log_drops()
        return True

    def _log_drops(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.drops.last_log < DROP_LOG_INTERVAL:
            return
        drops = self.drops
        if drops.unlogged_queued:
            logger.warning(
                "client %s: queue full (%d messages / %d bytes max), dropped the %d oldest QoS>=1 messages (total %d)",
                self.client_id,
                self.max_queued,
                self.max_queued_bytes,
                drops.unlogged_queued,
                drops.queued,
            )
        if drops.unlogged_qos0:
            logger.warning(
                "client %s: not reading fast enough, dropped %d QoS 0 messages (total %d)",
                self.client_id,
                drops.unlogged_qos0,
                drops.qos0,
            )
        drops.unlogged_queued = drops.unlogged_qos0 = 0
        drops.last_log = now

    def _send_new(self, output: ClientOutput, out: Outgoing) -> None:
        packet_id = self.next_id
        while True:
            packet_id = packet_id + 1 if packet_id < 0xFFFF else 1
            if packet_id not in self.inflight:
                break
        self.next_id = packet_id
        out.packet_id = packet_id
        self.inflight[packet_id] = out
        output.send_publish(out.message, out.qos, out.retain, packet_id)

    def pump(self) -> None:
        """Move queued messages into the in-flight window while the client keeps up."""
        output = self.output
        if output is None:
            return
        pending = self.pending
        while pending and len(self.inflight) < self.max_inflight:
            if output.congested():
                output.request_resume()
                break
            out = pending.popleft()
            self.pending_bytes -= len(out.message.payload)
            self._send_new(output, out)
        if self.drops.unlogged_queued or self.drops.unlogged_qos0:
            self._log_drops(force=not pending)

    def acknowledge(self, packet_id: int) -> None:
        """PUBACK or PUBCOMP from the client: the message is done."""
        if self.inflight.pop(packet_id, None) is None:
            logger.debug("client %s acknowledged unknown packet id %d", self.client_id, packet_id)
        elif self.pending:
            self.pump()

    def release(self, packet_id: int) -> None:
        """PUBREC from the client: mark the QoS 2 message released (the caller sends PUBREL)."""
        out = self.inflight.get(packet_id)
        if out is not None:
            out.released = True

    def attach(self, output: ClientOutput) -> None:
        """A connection took this session: re-send what is in flight (DUP), then the queue."""
        self.output = output
        output.on_resume = self
        for out in self.inflight.values():
            if out.released:
                output.send(PUBREL_HEAD + out.packet_id.to_bytes(2, "big"))
            else:
                output.send_publish(out.message, out.qos, out.retain, out.packet_id, dup=True)
        self.pump()

    def detach(self) -> None:
        """The connection is gone; a persistent session keeps queueing."""
        if self.output is not None:
            self.output.on_resume = None
        self.output = None
        if self.drops.unlogged_queued or self.drops.unlogged_qos0:
            self._log_drops(force=True)
