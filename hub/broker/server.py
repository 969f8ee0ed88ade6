"""The embedded MQTT 3.1.1 broker: an asyncio server, sessions, retained messages, wills.

For the first run and the demo (production uses Mosquitto). Each connection is one
task reading chunks of the stream and splitting them into frames with
:class:`~hub.mqtt.codec.FrameBuffer` (so TCP fragmentation is a non-issue); routing is
synchronous inside that task, writes are batched per
event-loop turn by :class:`~hub.broker.session.ClientOutput`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from hub.broker.session import ClientOutput, Message, Session
from hub.broker.subscriptions import SubscriptionRegistry
from hub.broker.topics import (
    TopicValidationError,
    matches,
    validate_filter,
    validate_topic_name,
)
from hub.mqtt.codec import PUBACK_HEAD, PUBREC_HEAD, FrameBuffer, decode_body, decode_publish, encode
from hub.mqtt.packets import (
    CONNACK_ACCEPTED,
    CONNACK_BAD_PROTOCOL,
    CONNACK_IDENTIFIER_REJECTED,
    CONNACK_NOT_AUTHORIZED,
    PROTOCOLS,
    SUBACK_FAILURE,
    Connack,
    Connect,
    MalformedPacketError,
    PacketTooLargeError,
    PacketType,
    Pingresp,
    ProtocolError,
    Puback,
    Pubcomp,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    Will,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_PACKET_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_QUEUED = 100_000
DEFAULT_MAX_QUEUED_BYTES = 256 * 1024 * 1024
#: QoS 1/2 messages in flight to one client. The hub acknowledges a message only once its points are
#: durable (~0.2-0.5 s later), so at 25k msgs/s ~5-12k are in flight to it: as docs/mosquitto.conf.
DEFAULT_MAX_INFLIGHT = 20_000
#: Bytes buffered towards one client before it counts as congested.
DEFAULT_WRITE_HIGH_WATER = 16 * 1024 * 1024
#: Seconds a new connection has to send CONNECT.
CONNECT_TIMEOUT = 10.0
#: Bytes taken from a connection's stream reader at a time; the frames they complete are handled before the next read.
READ_CHUNK = 256 * 1024

#: ``authenticate(client_id, username, password) -> allowed``
Authenticate = Callable[[str, str | None, bytes | None], bool]
#: ``authorize(client_id, username, topic_or_filter, is_publish) -> allowed``
Authorize = Callable[[str, str | None, str, bool], bool]

_PUBACK = 0x40
_PINGRESP = encode(Pingresp())


@dataclass
class BrokerStats:
    """Counters for tests, logs and benchmarks."""

    connections: int = 0
    messages_in: int = 0
    deliveries: int = 0
    refused: int = 0
    protocol_errors: int = 0
    wills_published: int = 0


class _Connection:
    """One TCP connection after a successful CONNECT."""

    __slots__ = ("clean_exit", "client_id", "keepalive", "last_rx", "output", "session", "timer", "username", "will")

    def __init__(self, connect: Connect, client_id: str, session: Session, output: ClientOutput) -> None:
        self.client_id = client_id
        self.username = connect.username
        self.will: Will | None = connect.will
        self.keepalive = connect.keepalive
        self.session = session
        self.output = output
        self.clean_exit = False
        self.last_rx = 0.0
        self.timer: asyncio.TimerHandle | None = None


class EmbeddedBroker:
    """A small MQTT 3.1.1 broker on one asyncio loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        max_packet_bytes: int = DEFAULT_MAX_PACKET_BYTES,
        max_queued: int = DEFAULT_MAX_QUEUED,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
        authenticate: Authenticate | None = None,
        authorize: Authorize | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.max_packet_bytes = max_packet_bytes
        self.max_queued = max_queued
        self.max_queued_bytes = max_queued_bytes
        self.max_inflight = max_inflight
        self.write_high_water = write_high_water
        self.authenticate = authenticate
        self.authorize = authorize
        self.stats = BrokerStats()
        self.sessions: dict[str, Session] = {}
        self.retained: dict[str, Message] = {}
        self._connections: dict[str, _Connection] = {}
        self._subscriptions = SubscriptionRegistry()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False

    async def start(self) -> None:
        """Listen; ``.port`` is the real port afterwards (port 0 picks a free one)."""
        self._closing = False
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=1024 * 1024)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("embedded MQTT broker listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and drop every client (no wills: the broker itself is going away)."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        # Let handlers accepted but not yet started run once: they see _closing and return.
        await asyncio.sleep(0)
        for conn in list(self._connections.values()):
            conn.will = None
        for writer in list(self._writers):
            writer.transport.abort()  # handlers see EOF and clean up; cancelling them trips asyncio 3.11
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        logger.info("embedded MQTT broker on port %s stopped", self.port)

    @property
    def client_count(self) -> int:
        """Clients connected right now."""
        return len(self._connections)

    # ------------------------------------------------------------------ connection life

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.transport.abort()
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        conn: _Connection | None = None
        stream = FrameBuffer(self.max_packet_bytes)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                frames: list[tuple[int, bytes]] = []
                while not frames:
                    frames = await self._read_frames(reader, stream)
            header, body = frames[0]
            if header >> 4 != PacketType.CONNECT:
                raise MalformedPacketError("first_packet_not_connect", str(header >> 4))
            connect = decode_body(header, body)
            assert isinstance(connect, Connect)
            conn = self._accept(connect, writer, peer)
            if conn is None:
                await writer.drain()  # the refusing CONNACK goes out before the close
                writer.close()
            else:
                await self._serve(conn, reader, stream, frames[1:])
        except TimeoutError:
            logger.warning("client %s sent no CONNECT within %ss", peer, CONNECT_TIMEOUT)
        except PacketTooLargeError as exc:
            self.stats.protocol_errors += 1
            name = conn.client_id if conn else peer
            logger.warning("client %s disconnected: packet of %s bytes over the %s byte cap", name, exc.size, exc.limit)
        except ProtocolError as exc:
            self.stats.protocol_errors += 1
            logger.warning("client %s disconnected: protocol error %s", conn.client_id if conn else peer, exc)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("client %s: unexpected error", conn.client_id if conn else peer)
        finally:
            if conn is not None:
                self._connection_closed(conn)
            writer.transport.abort()
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)

    async def _read_frames(self, reader: asyncio.StreamReader, stream: FrameBuffer) -> list[tuple[int, bytes]]:
        """Read what the client sent next; the frames it completed (maybe none). The end of the stream raises."""
        data = await reader.read(READ_CHUNK)
        if not data:
            raise asyncio.IncompleteReadError(b"", None)
        return stream.frames(data)

    def _refuse(self, writer: asyncio.StreamWriter, code: int, client_id: str, why: str) -> None:
        self.stats.refused += 1
        logger.warning("refused CONNECT from client %r: %s (CONNACK %#04x)", client_id, why, code)
        writer.write(encode(Connack(code)))

    def _accept(self, connect: Connect, writer: asyncio.StreamWriter, peer: object) -> _Connection | None:
        if (connect.protocol_name, connect.protocol_level) not in PROTOCOLS:
            if connect.protocol_name in ("MQTT", "MQIsdp"):
                self._refuse(writer, CONNACK_BAD_PROTOCOL, connect.client_id, f"level {connect.protocol_level}")
                return None
            raise MalformedPacketError("bad_protocol_name", connect.protocol_name)
        client_id = connect.client_id
        if any(c in client_id for c in "+#/\x00") or (not client_id and not connect.clean_session):
            self._refuse(writer, CONNACK_IDENTIFIER_REJECTED, client_id, "bad client id")
            return None
        if not client_id:
            client_id = f"auto-{uuid.uuid4().hex}"
        if connect.will is not None:
            validate_topic_name(connect.will.topic)
        if self.authenticate is not None and not self._call_hook(
            self.authenticate, client_id, connect.username, connect.password
        ):
            self._refuse(writer, CONNACK_NOT_AUTHORIZED, client_id, "authentication failed")
            return None
        old = self._connections.pop(client_id, None)
        if old is not None:
            logger.debug("client %s taken over by a new connection from %s", client_id, peer)
            self._drop_connection(old)
        session = self.sessions.get(client_id)
        present = session is not None and not connect.clean_session
        if session is not None and not present:
            self._discard_session(session)
            session = None
        if session is None:
            session = Session(
                client_id, connect.clean_session, self.max_inflight, self.max_queued, self.max_queued_bytes
            )
            self.sessions[client_id] = session
        session.clean = connect.clean_session
        output = ClientOutput(writer, self.write_high_water)
        conn = _Connection(connect, client_id, session, output)
        self._connections[client_id] = conn
        self.stats.connections += 1
        output.send(encode(Connack(CONNACK_ACCEPTED, present)))
        session.attach(output)
        logger.debug(
            "client %s connected from %s (clean=%s, keepalive=%s)", client_id, peer, session.clean, conn.keepalive
        )
        return conn

    def _call_hook(self, hook: Callable[..., bool], *args: object) -> bool:
        try:
            return bool(hook(*args))
        except Exception:
            logger.exception("auth hook %r failed; refusing", hook)
            return False

    def _drop_connection(self, conn: _Connection) -> None:
        """Detach ``conn`` from its session and publish its will (takeover, keepalive, error)."""
        if self._connections.get(conn.client_id) is conn:
            del self._connections[conn.client_id]
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        if conn.session.output is conn.output:
            conn.session.detach()
        conn.output.close()
        will, conn.will = conn.will, None
        if will is not None and not conn.clean_exit:
            self.stats.wills_published += 1
            logger.debug("publishing will of client %s", conn.client_id)
            if self._may_publish(conn, will.topic):
                self.publish(Message(will.topic, will.payload, will.qos, will.retain))

    def _connection_closed(self, conn: _Connection) -> None:
        self._drop_connection(conn)
        session = conn.session
        if session.clean and session.output is None and self.sessions.get(session.client_id) is session:
            self._discard_session(session)
        logger.debug("client %s disconnected (clean=%s)", conn.client_id, conn.clean_exit)

    def _discard_session(self, session: Session) -> None:
        for topic_filter in list(session.subscriptions):
            self._unsubscribe(session, topic_filter)
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]

    def _keepalive_check(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        limit = conn.keepalive * 1.5
        due = conn.last_rx + limit
        if loop.time() >= due:
            logger.info("client %s keepalive expired (no packet for %ss); dropping it", conn.client_id, limit)
            self._drop_connection(conn)
            return
        conn.timer = loop.call_at(due, self._keepalive_check, conn)

    # ------------------------------------------------------------------ packets

    async def _serve(
        self, conn: _Connection, reader: asyncio.StreamReader, stream: FrameBuffer, frames: list[tuple[int, bytes]]
    ) -> None:
        """Handle ``frames`` (what came with CONNECT), then every frame the client sends until DISCONNECT."""
        loop = asyncio.get_running_loop()
        conn.last_rx = loop.time()
        if conn.keepalive:
            conn.timer = loop.call_at(conn.last_rx + conn.keepalive * 1.5, self._keepalive_check, conn)
        session = conn.session
        output = conn.output
        read_frames = self._read_frames
        while True:
            for header, body in frames:
                kind = header >> 4
                if kind == PacketType.PUBLISH:
                    self._on_publish(conn, header, body)
                elif kind == PacketType.PUBACK and header == _PUBACK and len(body) == 2:
                    session.acknowledge((body[0] << 8) | body[1])
                elif kind == PacketType.PINGREQ:
                    decode_body(header, body)
                    output.send(_PINGRESP)
                elif kind == PacketType.DISCONNECT:
                    decode_body(header, body)
                    conn.clean_exit = True
                    conn.will = None
                    return
                else:
                    self._on_control(conn, header, body)
            frames = await read_frames(reader, stream)
            conn.last_rx = loop.time()

    def _on_control(self, conn: _Connection, header: int, body: bytes) -> None:
        session = conn.session
        match decode_body(header, body):
            case Puback(packet_id=packet_id) | Pubcomp(packet_id=packet_id):
                session.acknowledge(packet_id)
            case Pubrec(packet_id=packet_id):
                session.release(packet_id)
                conn.output.send(encode(Pubrel(packet_id)))
            case Pubrel(packet_id=packet_id):
                session.incoming_qos2.discard(packet_id)
                conn.output.send(encode(Pubcomp(packet_id)))
            case Subscribe() as packet:
                self._on_subscribe(conn, packet)
            case Unsubscribe() as packet:
                for topic_filter in packet.topics:
                    validate_filter(topic_filter)
                    self._unsubscribe(session, topic_filter)
                conn.output.send(encode(Unsuback(packet.packet_id)))
            case packet:
                raise ProtocolError("unexpected_packet", type(packet).__name__)

    def _may_publish(self, conn: _Connection, topic: str) -> bool:
        if self.authorize is None or self._call_hook(self.authorize, conn.client_id, conn.username, topic, True):
            return True
        logger.warning("client %s not authorized to publish to %s; dropped", conn.client_id, topic)
        return False

    def _on_publish(self, conn: _Connection, header: int, body: bytes) -> None:
        packet = decode_publish(header & 0x0F, body)
        validate_topic_name(packet.topic)
        qos = packet.qos
        allowed = self.authorize is None or self._may_publish(conn, packet.topic)
        if qos == 2:
            packet_id = packet.packet_id or 0
            fresh = packet_id not in conn.session.incoming_qos2
            conn.session.incoming_qos2.add(packet_id)
            if fresh and allowed:
                self.publish(Message(packet.topic, packet.payload, qos, packet.retain))
            conn.output.send(PUBREC_HEAD + packet_id.to_bytes(2, "big"))
            return
        if allowed:
            self.publish(Message(packet.topic, packet.payload, qos, packet.retain))
        if qos == 1:
            conn.output.send(PUBACK_HEAD + (packet.packet_id or 0).to_bytes(2, "big"))

    def publish(self, message: Message) -> int:
        """Route ``message`` to every matching subscriber (and the retained store); return deliveries."""
        self.stats.messages_in += 1
        if message.retain:
            if message.payload:
                self.retained[message.topic] = message
            else:
                self.retained.pop(message.topic, None)
        sessions = self.sessions
        delivered = 0
        for client_id, qos in self._subscriptions.targets(message.topic, sessions):
            delivered += sessions[client_id].deliver(message, min(qos, message.qos))
        self.stats.deliveries += delivered
        return delivered

    # ------------------------------------------------------------------ subscriptions

    def _on_subscribe(self, conn: _Connection, packet: Subscribe) -> None:
        session = conn.session
        codes: list[int] = []
        granted: list[tuple[str, int]] = []
        for topic_filter, requested in packet.topics:
            validate_filter(topic_filter)
            if self.authorize is not None and not self._call_hook(
                self.authorize, conn.client_id, conn.username, topic_filter, False
            ):
                logger.warning("client %s not authorized to subscribe to %s", conn.client_id, topic_filter)
                codes.append(SUBACK_FAILURE)
                continue
            qos = min(requested, 2)
            self._subscribe(session, topic_filter, qos)
            codes.append(qos)
            granted.append((topic_filter, qos))
        conn.output.send(encode(Suback(packet.packet_id, tuple(codes))))
        for topic_filter, qos in granted:
            if topic_filter.startswith("$share/"):
                continue  # retained messages are not sent to shared subscriptions
            for message in list(self.retained.values()):
                if matches(topic_filter, message.topic):
                    session.deliver(message, min(qos, message.qos), retain=True)

    def _subscribe(self, session: Session, topic_filter: str, qos: int) -> None:
        self._subscriptions.add(session.client_id, topic_filter, qos)
        session.subscriptions[topic_filter] = qos

    def _unsubscribe(self, session: Session, topic_filter: str) -> None:
        if session.subscriptions.pop(topic_filter, None) is not None:
            self._subscriptions.remove(session.client_id, topic_filter)


__all__ = ["Authenticate", "Authorize", "BrokerStats", "EmbeddedBroker", "TopicValidationError"]
