"""A lean MQTT 3.1.1 client for the hub's ingest: raw sockets, one I/O thread, reconnect forever.

paho builds an ``MQTTMessage``, takes locks and runs several callbacks per received
packet; at tens of thousands of QoS 1 messages a second that machinery is the
bottleneck. :class:`MqttLink` reads up to :data:`RECV_CHUNK` bytes per ``recv``,
parses every whole PUBLISH in place with the codec's zero-copy framing
(:func:`~hub.mqtt.codec.next_frame`, :func:`~hub.mqtt.codec.publish_layout`: topic,
packet id, payload slice, no packet objects) and writes the PUBACKs of a chunk in one
``send``; when they may go out is :mod:`hub.ingest.link_acks`' business.

Threading: one thread owns the socket and does all I/O (a TLS socket must never be
read and written from two threads). :meth:`MqttLink.publish` from any other thread
appends to a deque and writes a byte into a wake-up socket pair; the I/O thread
waits in a selector on the broker socket and that wake-up socket. Callbacks
(``on_message``, ``on_connect``, ``on_disconnect``) run on the I/O thread.

Inbound QoS 2 (we subscribe at QoS 1, but a broker may grant or send QoS 2): handled
per the specification -- delivered once, PUBREC sent after ``on_message`` returns,
PUBCOMP on PUBREL; a DUP re-send before PUBREL is acknowledged but not delivered
again.

Sockets stay in blocking mode with a timeout once connected: the selector says when
to read, and a write that cannot complete within :data:`SEND_TIMEOUT_S` counts as a
lost connection. Connecting (TCP and TLS handshake, :mod:`hub.ingest.link_socket`) is
non-blocking and watches the wake-up socket, so :meth:`MqttLink.stop` is quick even when
the broker does not answer.
"""

from __future__ import annotations

import contextlib
import logging
import random
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from hub.ingest.link_acks import RELEASE_POLL_S, AckQueue
from hub.ingest.link_socket import LinkDown, Stopping, await_close, open_socket, recv_chunk
from hub.mqtt.codec import (
    PUBACK_HEAD,
    PUBREC_HEAD,
    FrameBuffer,
    decode_body,
    encode,
    next_frame,
    publish_header,
    publish_layout,
)
from hub.mqtt.packets import (
    SUBACK_FAILURE,
    Connack,
    Connect,
    Disconnect,
    MalformedPacketError,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Pubrel,
    Suback,
    Subscribe,
    connack_reason,
)

logger = logging.getLogger(__name__)

#: Bytes asked of each ``recv``.
RECV_CHUNK: Final = 256 * 1024
#: While working through a chunk, queued acknowledgements are written after this many packets or seconds
#: (a slow handler must not let the keepalive lapse: the broker would drop us and redeliver everything).
ACK_FLUSH_PACKETS: Final = 64
ACK_FLUSH_S: Final = 0.05
#: Seconds for TCP connect + TLS handshake, and again for CONNACK + SUBACK.
CONNECT_TIMEOUT_S: Final = 10.0
#: Seconds a blocked ``send`` may take before the connection counts as lost.
SEND_TIMEOUT_S: Final = 10.0
#: Seconds stop() waits for the broker to close the connection after DISCONNECT.
CLOSE_WAIT_S: Final = 0.5
#: How long stop() waits for held acknowledgements (they are re-checked every RELEASE_POLL_S without a wake-up).
RELEASE_WAIT_S: Final = 3.0
#: Seconds between two logged ``on_message`` failures (the others are counted in the next log line).
HANDLER_ERROR_LOG_S: Final = 1.0

MessageHandler = Callable[[bytes, bytes, int], None]


@dataclass(slots=True)
class LinkStats:
    """Counters of one link (written by its I/O thread only)."""

    messages_received: int = 0
    bytes_received: int = 0
    #: Acknowledgements written: PUBACK (and, for inbound QoS 2, PUBREC and PUBCOMP).
    pubacks_sent: int = 0
    messages_published: int = 0
    #: Outbound QoS 1 messages dropped unacknowledged (clean session reconnect, or stop()).
    publishes_failed: int = 0
    handler_errors: int = 0
    #: Successful connections (CONNACK accepted and SUBACK received).
    connects: int = 0
    #: Successful connections after the first.
    reconnects: int = 0


class MqttLink:
    """One MQTT 3.1.1 connection owned by one background thread; reconnects forever with backoff.

    ``on_message(topic, payload, qos)`` is called in arrival order; a QoS 1 message is
    acknowledged only after it returns (at-least-once). An exception raised by it is
    logged and counted, and the message is still acknowledged: the caller dead-letters
    bad input itself. ``before_ack()`` (optional) is called before acknowledgements are
    written, at least once per received chunk: a handler that batches work across messages
    makes it safe there; if it raises, nothing is acknowledged and the connection is
    dropped, so the broker delivers those messages again. With ``released`` the
    acknowledgement waits further: ``before_ack`` returns a ticket (an int that only
    grows; None: nothing new to wait for) and the chunk's PUBACKs are sent, in order,
    once ``released()`` (e.g. the series writer's ``durable_through``) reaches it;
    :meth:`wake` re-checks. Acknowledgements still held when the connection ends are
    never sent, so the broker delivers those messages again. ``on_disconnect(reason)`` is
    called after every lost connection and failed connection attempt (not after
    :meth:`stop`). With a persistent session the broker may deliver queued messages
    between CONNACK and SUBACK, i.e. before ``on_connect``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        subscriptions: Sequence[tuple[str, int]],
        on_message: MessageHandler,
        clean_session: bool = False,
        keepalive: int = 30,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[str], None] | None = None,
        before_ack: Callable[[], int | None] | None = None,
        released: Callable[[], int] | None = None,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 5.0,
        name: str = "mqtt-link",
    ) -> None:
        if not 0 <= keepalive <= 0xFFFF:
            raise ValueError(f"keepalive must be 0..65535 seconds, got {keepalive}")
        if not 0 < reconnect_min_s <= reconnect_max_s:
            raise ValueError(f"need 0 < reconnect_min_s <= reconnect_max_s, got {reconnect_min_s}, {reconnect_max_s}")
        for topic_filter, qos in subscriptions:
            if not topic_filter or qos not in (0, 1, 2):
                raise ValueError(f"bad subscription ({topic_filter!r}, {qos}): need a filter and QoS 0, 1 or 2")
        if ca_file is not None and not tls:
            raise ValueError("ca_file is set but tls is off")
        self.host = host
        self.port = port
        self.client_id = client_id
        self.subscriptions = tuple(subscriptions)
        self.clean_session = clean_session
        self.keepalive = keepalive
        self.name = name
        self.stats = LinkStats()
        self._on_message = on_message
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._acks = AckQueue(name, before_ack, released)
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        pw = password.encode("utf-8") if password is not None else None
        self._connect_frame = encode(Connect(client_id, clean_session, keepalive, None, username, pw))
        self._ssl: ssl.SSLContext | None = ssl.create_default_context(cafile=ca_file) if tls else None
        self._outbox: deque[tuple[bytes, bytes, int]] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._waiting = False  # the I/O thread is in (or about to enter) select: wake() must send a byte
        self._connected = False
        # Everything below belongs to the I/O thread.
        self._sock: socket.socket | None = None
        self._session_up = False  # CONNACK accepted (SUBACK may still be due)
        self._sub_id = 0
        self._inflight: dict[int, bytes] = {}  # outbound QoS 1: packet id -> frame
        self._qos2_ids: set[int] = set()  # inbound QoS 2 delivered, PUBREL not yet seen
        self._next_id = 0
        self._frames = FrameBuffer()
        self._last_send = self._last_recv = self._last_ping = 0.0
        self._error_logged_at = 0.0
        self._errors_unlogged = 0

    # ------------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        """True once CONNACK was accepted and the SUBACK received, until the connection is lost."""
        return self._connected

    def start(self) -> None:
        """Start the I/O thread; it connects in the background and keeps reconnecting."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._stopping.clear()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send DISCONNECT (the broker keeps a persistent session), close and join the thread."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._wake()
        thread.join(timeout)
        self._thread = None
        if thread.is_alive():
            logger.warning("%s: I/O thread did not stop within %.1f s", self.name, timeout)
            return
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Queue a message for the I/O thread (thread-safe); raise ConnectionError when not connected.

        QoS 1 messages stay in flight until the PUBACK; after a reconnect they are re-sent
        with DUP when the session is persistent, and dropped (logged) with a clean session.
        """
        if qos not in (0, 1):
            raise ValueError(f"publish QoS must be 0 or 1, got {qos}")
        raw = topic.encode("utf-8")
        if not raw or len(raw) > 0xFFFF or "+" in topic or "#" in topic or "\x00" in topic:
            raise ValueError(f"bad topic name {topic!r}")
        if not self._connected:
            raise ConnectionError(f"{self.name}: not connected to {self.host}:{self.port}")
        self._outbox.append((raw, bytes(payload), qos))
        self._wake()

    def wake(self) -> None:
        """Make the I/O thread look again at held acknowledgements (thread-safe, cheap).

        The wake-up byte is sent only while the I/O thread waits in ``select``: a busy one looks at
        ``release_due`` at its next acknowledgement flush (every 64 messages), and one about to wait
        looks before it does (:meth:`_timeout`). Called by the series writer after every batch: a
        ``send`` there gave up the GIL, and under load the writer then waited for it (up to the
        interpreter's 5 ms switch interval) before it could post the next batch to the store."""
        self._acks.release_due = True
        if self._waiting:
            self._wake()

    @property
    def held_acks(self) -> int:
        """PUBACKs waiting for ``released`` (a snapshot, for tests and metrics)."""
        return self._acks.held_count

    # ------------------------------------------------------------------ thread

    def _wake(self) -> None:
        wake = self._wake_w
        if wake is not None:
            # OSError: buffer full (a wake-up is pending anyway) or closed by stop().
            with contextlib.suppress(OSError):
                wake.send(b"\x00")

    def _run(self) -> None:
        delay = self._reconnect[0]
        last_reason: str | None = None
        while not self._stopping.is_set():
            reason: str | None = None
            try:
                self._session()
            except Stopping:
                pass
            except LinkDown as exc:
                reason = str(exc)
            except ssl.SSLError as exc:
                reason = f"TLS error: {exc}"
            except OSError as exc:
                reason = f"connection lost: {exc}"
            except Exception as exc:  # loop boundary: log with traceback, reconnect
                logger.exception("%s: internal error", self.name)
                reason = f"internal error: {exc!r}"
            finally:
                was_connected = self._connected
                self._teardown()
            if reason is None or self._stopping.is_set():
                break
            if was_connected:
                delay, last_reason = self._reconnect[0], None
            wait = min(self._reconnect[1], delay * random.uniform(1.0, 1.25))
            # One warning per distinct reason while down: a broker away for an hour is not 700 log lines.
            log = logger.warning if reason != last_reason else logger.debug
            log("%s: MQTT %s:%d down: %s; retrying in %.1f s", self.name, self.host, self.port, reason, wait)
            last_reason = reason
            self._call("on_disconnect", self._on_disconnect, reason)
            delay = min(self._reconnect[1], delay * 2)
            self._stopping.wait(wait)

    def _teardown(self) -> None:
        self._connected = False
        self._session_up = False
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._acks.clear()  # never sent: the broker delivers those messages again
        self._frames.clear()

    def _call(self, what: str, callback: Callable[..., None] | None, *args: object) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # a callback bug must not stop the link
            logger.exception("%s: %s callback failed", self.name, what)

    # ------------------------------------------------------------------ connection

    def _session(self) -> None:
        """Connect, then serve until stop() (returns) or the connection ends (raises)."""
        sock = self._open()
        self._sock = sock
        assert self._wake_r is not None
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ, True)
            sel.register(self._wake_r, selectors.EVENT_READ, False)
            now = time.monotonic()
            self._last_recv = self._last_ping = now
            self._send(self._connect_frame)
            handshake_deadline = now + CONNECT_TIMEOUT_S
            while True:
                self._waiting = True  # before _timeout looks at release_due (see wake)
                events = sel.select(self._timeout(handshake_deadline))
                self._waiting = False
                for key, _ in events:
                    if key.data:
                        self._read(sock)
                    else:
                        self._drain_wake()
                if self._stopping.is_set():
                    self._goodbye()
                    return
                self._flush_acks()
                if self._session_up and self._outbox:
                    self._send_outbox()
                self._keepalive(handshake_deadline)

    def _open(self) -> socket.socket:
        """TCP connect (and TLS handshake) without blocking stop()."""
        assert self._wake_r is not None
        return open_socket(
            self.host,
            self.port,
            tls=self._ssl,
            wake=self._wake_r,
            stopping=self._stopping,
            connect_timeout_s=CONNECT_TIMEOUT_S,
            send_timeout_s=SEND_TIMEOUT_S,
        )

    def _goodbye(self) -> None:
        """Flush what is queued, then DISCONNECT: the broker keeps the session and sends no will."""
        try:
            self._flush_acks()
            deadline = time.monotonic() + RELEASE_WAIT_S
            while self._acks.held and time.monotonic() < deadline:
                time.sleep(0.01)  # the writer makes them durable within its flush interval
                self._send_acks(*self._acks.release())
            if self._acks.held:
                logger.warning(
                    "%s: stopping with %d messages not yet safe, so not acknowledged; the broker delivers them again",
                    self.name,
                    self.held_acks,
                )
            if self._session_up and self._outbox:
                self._send_outbox()
            self._send(encode(Disconnect()))
            assert self._sock is not None
            await_close(self._sock, CLOSE_WAIT_S, RECV_CHUNK)
        except (OSError, LinkDown) as exc:
            logger.debug("%s: DISCONNECT not sent: %s", self.name, exc)
        if self._inflight:
            logger.warning("%s: stopped with %d QoS 1 messages unacknowledged", self.name, len(self._inflight))
            self.stats.publishes_failed += len(self._inflight)
            self._inflight.clear()

    # ------------------------------------------------------------------ timing

    def _timeout(self, handshake_deadline: float) -> float:
        now = time.monotonic()
        due = self._handshake_due(handshake_deadline) if not self._connected else now + 3600.0
        k = self.keepalive
        if k:
            due = min(due, self._last_send + k, self._last_recv + 1.5 * k)
            if self._last_ping <= self._last_recv:
                due = min(due, self._last_recv + k)
        if self._acks.held:  # released() is normally signalled through wake(); poll as well, cheaply
            if self._acks.release_due:
                return 0.0  # a wake() came while we were busy: look before waiting
            due = min(due, now + RELEASE_POLL_S)
        return max(0.0, due - now)

    def _handshake_due(self, handshake_deadline: float) -> float:
        """When waiting for CONNACK/SUBACK ends. A persistent session's queued backlog arrives between
        CONNACK and SUBACK (the broker answers SUBSCRIBE after it), so after CONNACK the wait counts
        from the last packet received, not from the connect."""
        if not self._session_up:
            return handshake_deadline
        return max(handshake_deadline, self._last_recv + CONNECT_TIMEOUT_S)

    def _keepalive(self, handshake_deadline: float) -> None:
        now = time.monotonic()
        if not self._connected and now >= self._handshake_due(handshake_deadline):
            waited = "CONNACK" if not self._session_up else "SUBACK"
            raise LinkDown(f"no {waited} within {CONNECT_TIMEOUT_S:g} s")
        k = self.keepalive
        if not k:
            return
        if now - self._last_recv > 1.5 * k:
            raise LinkDown(f"nothing received for {1.5 * k:g} s (keepalive {k} s)")
        # Ping when we were silent, and also when the broker was: PUBACKs alone do not prove it is alive.
        if now - self._last_send >= k or (now - self._last_recv >= k and self._last_ping <= self._last_recv):
            self._last_ping = now
            self._send(encode(Pingreq()))

    # ------------------------------------------------------------------ writing

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise LinkDown(f"send blocked for {SEND_TIMEOUT_S:g} s") from exc
        self._last_send = time.monotonic()

    def _flush_acks(self) -> None:
        self._send_acks(*self._acks.flush())

    def _send_acks(self, data: bytes, count: int) -> None:
        if count:
            self.stats.pubacks_sent += count
            self._send(data)

    def _new_id(self) -> int:
        for _ in range(0xFFFF):
            self._next_id = self._next_id % 0xFFFF + 1
            if self._next_id not in self._inflight and self._next_id != self._sub_id:
                return self._next_id
        raise LinkDown("no free packet id: 65535 QoS 1 messages in flight")

    def _send_outbox(self) -> None:
        frames: list[bytes] = []
        outbox = self._outbox
        while outbox and len(self._inflight) < 0xFFF0:
            topic, payload, qos = outbox.popleft()
            if qos:
                packet_id = self._new_id()
                frame = publish_header(topic, 1, packet_id, len(payload)) + payload
                self._inflight[packet_id] = frame
            else:
                frame = publish_header(topic, 0, None, len(payload)) + payload
            frames.append(frame)
        self.stats.messages_published += len(frames)
        self._send(b"".join(frames))

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    # ------------------------------------------------------------------ reading

    def _read(self, sock: socket.socket) -> None:
        try:
            data = recv_chunk(sock, RECV_CHUNK)
        except ssl.SSLWantReadError:
            return  # only part of a TLS record so far
        except TimeoutError:
            return
        if not data:
            raise LinkDown("connection closed by broker")
        self._last_recv = time.monotonic()
        self.stats.bytes_received += len(data)
        buf = self._frames.feed(data)
        if not buf:
            return  # a large frame is being collected
        pos, need = self._parse(buf)
        # The broker's silence counts from when we could read again: time spent in our handler is ours.
        self._last_recv = time.monotonic()
        self._frames.keep(buf, pos, need)

    def _parse(self, buf: bytes) -> tuple[int, int]:
        """Handle every whole frame in ``buf``; return (bytes used, size of the incomplete frame or 0)."""
        on_message = self._on_message
        ack_queue = self._acks
        acks = ack_queue.pending
        stopping = self._stopping
        monotonic = time.monotonic
        qos2_ids = self._qos2_ids
        n = len(buf)
        pos = 0
        count = 0
        flushed = monotonic()
        try:
            while pos < n:
                start, end = next_frame(buf, pos)
                if end > n:
                    return pos, end - pos
                header = buf[pos]
                pos = end
                if header & 0xF0 != 0x30:
                    self._control(header, buf[start:end])
                    continue
                qos = (header >> 1) & 0x03
                if qos == 3:
                    raise LinkDown("protocol error: PUBLISH with QoS 3")
                topic, j = publish_layout(buf, start, end, qos)
                count += 1
                # QoS 2: a DUP re-send before PUBREL is acknowledged again but not delivered twice.
                if qos != 2 or (packet_id := (buf[j - 2] << 8) | buf[j - 1]) not in qos2_ids:
                    ack_queue.delivered += 1
                    try:
                        on_message(topic, buf[j:end], qos)
                    except Exception:  # acknowledged anyway: the caller dead-letters bad input itself
                        self._handler_failed(topic)
                    if qos == 2:
                        qos2_ids.add(packet_id)
                if qos == 1:
                    acks.append(PUBACK_HEAD + buf[j - 2 : j])
                elif qos == 2:
                    acks.append(PUBREC_HEAD + buf[j - 2 : j])
                if len(acks) >= ACK_FLUSH_PACKETS or (not count & 7 and monotonic() - flushed >= ACK_FLUSH_S):
                    self._flush_acks()
                    flushed = monotonic()
                    if stopping.is_set():
                        # The rest is not acknowledged: the broker delivers it again to the persistent session.
                        return n, 0
            return pos, 0
        except MalformedPacketError as exc:
            raise LinkDown(f"protocol error: {exc}") from exc
        finally:
            self.stats.messages_received += count

    def _handler_failed(self, topic: bytes) -> None:
        """Log an ``on_message`` failure (from inside its ``except``), at most once per second."""
        self.stats.handler_errors += 1
        now = time.monotonic()
        if now - self._error_logged_at >= HANDLER_ERROR_LOG_S:
            logger.exception(
                "%s: on_message failed for %r (%d earlier failures not logged)",
                self.name,
                topic,
                self._errors_unlogged,
            )
            self._error_logged_at, self._errors_unlogged = now, 0
        else:
            self._errors_unlogged += 1

    def _control(self, header: int, body: bytes) -> None:
        """Every packet but PUBLISH."""
        match decode_body(header, body):
            case Puback(packet_id=packet_id):
                self._inflight.pop(packet_id, None)
            case Pingresp():
                pass
            case Pubrel(packet_id=packet_id):  # QoS 2 step 2
                self._qos2_ids.discard(packet_id)
                self._acks.pending.append(encode(Pubcomp(packet_id)))
            case Connack(return_code=code, session_present=present) if not self._session_up:
                self._connack(code, present)
            case Suback(packet_id=packet_id, return_codes=codes) if packet_id == self._sub_id:
                self._suback(codes)
            case _:
                kind = header >> 4
                raise LinkDown(
                    f"protocol error: unexpected packet type {kind} (header {header:#04x}, {len(body)} bytes)"
                )

    def _connack(self, code: int, session_present: bool) -> None:
        if code:
            raise LinkDown(connack_reason(code))
        self._session_up = True
        if self.clean_session:
            self._qos2_ids.clear()
            if self._inflight:
                logger.warning(
                    "%s: %d QoS 1 messages in flight dropped (clean session)", self.name, len(self._inflight)
                )
                self.stats.publishes_failed += len(self._inflight)
                self._inflight.clear()
        elif self._inflight:
            logger.info("%s: re-sending %d QoS 1 messages in flight", self.name, len(self._inflight))
            self._send(b"".join(bytes((f[0] | 0x08,)) + f[1:] for f in self._inflight.values()))
        logger.debug("%s: CONNACK accepted (session present: %s)", self.name, session_present)
        if self.subscriptions:
            self._sub_id = 0
            self._sub_id = self._new_id()
            self._send(encode(Subscribe(self._sub_id, self.subscriptions)))
        else:
            self._up()

    def _suback(self, codes: tuple[int, ...]) -> None:
        if len(codes) != len(self.subscriptions):
            raise LinkDown(f"protocol error: SUBACK has {len(codes)} codes for {len(self.subscriptions)} filters")
        for (topic_filter, _), code in zip(self.subscriptions, codes, strict=True):
            if code == SUBACK_FAILURE:
                logger.error("%s: broker refused the subscription to %r", self.name, topic_filter)
        self._sub_id = 0
        self._up()

    def _up(self) -> None:
        self._connected = True
        self.stats.connects += 1
        if self.stats.connects > 1:
            self.stats.reconnects += 1
        logger.info("%s: connected to %s:%d as %r", self.name, self.host, self.port, self.client_id)
        self._call("on_connect", self._on_connect)
