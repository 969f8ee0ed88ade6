"""MQTT ingest: subscribe with a persistent session, decode, dedup, update the registry, hand on.

Runs on the I/O thread of :class:`~hub.ingest.link.MqttLink` (raw sockets; paho's per-packet
machinery cost more than everything below together), so per-message work is kept to a few
microseconds: parse the topic, decode the payload, dedup by (device, seq),
update the in-memory registry, hand points to the series writer (which batches)
and call the sinks. No DB write happens per message. A message that breaks the
contract goes to the dead letter with its reason code and ingest carries on.
Per-device order is preserved because one thread processes everything.

The hub's session is persistent (``clean_session=False`` with a fixed client
id), so QoS 1 messages published while the hub is down are delivered when it
comes back. With a share group, every channel but ``status`` is a shared
subscription; ``status`` stays a plain subscription on every replica because
brokers do not deliver retained messages to shared subscriptions and every
replica needs each device's current session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast

from sqlalchemy.orm import Session, sessionmaker

from edge.wire import (
    Channel,
    Command,
    CommandAck,
    Event,
    EventState,
    GapNotice,
    Severity,
    Status,
    Telemetry,
    Topic,
    TopicError,
    WireError,
    check_snapshot,
    decode,
    encode,
    is_valid_id,
    parse_topic,
    shared_subscription,
    subscription,
    topic,
)
from hub.bus import EventBus
from hub.devices.registry import DeviceRecord, DeviceRegistry, StatusOutcome
from hub.ingest.deadletter import DeadLetterStore
from hub.ingest.gaps import GapManager
from hub.ingest.link import MqttLink
from hub.ingest.ratelimit import DeviceRateLimiter
from hub.ingest.sinks import DeviceRef, MessageSink
from hub.ingest.watermark import SeqWatermark, resume_with_journal
from hub.metrics import IngestStats
from hub.series.base import SeriesPoint
from hub.series.lineproto import LineProtocolError, float_fields, point_lines, series_prefix

logger = logging.getLogger(__name__)

#: Channels the hub subscribes to.
INGEST_CHANNELS = (Channel.STATUS, Channel.TELEMETRY, Channel.EVENT, Channel.GAP, Channel.SNAPSHOT, Channel.CMD_ACK)

#: Takes points, or lines of line protocol already encoded when ingest was built with ``encode_lines``.
PointSubmitter = Callable[[Sequence[SeriesPoint | str]], Any]
_SEQUENCED = (Event, GapNotice, CommandAck)  # sequenced messages besides telemetry
_TELEMETRY: Final = Channel.TELEMETRY  # an enum member read through its class costs ~10x a global
#: Parsed topics cached per name (parsing is a third of the per-message cost); cleared when full.
TOPIC_CACHE_SIZE = 65_536


def telemetry_lines(key: tuple[str, Mapping[str, str]], prefix: str, msg: Telemetry) -> Sequence[SeriesPoint | str]:
    """A message's points as lines (``prefix`` is ``series_prefix(*key)``) where every value is a finite
    float (what devices send), else as points for the writer to encode (ints, bools, strings follow its
    rules). Timestamps need no check: the wire contract keeps them far inside line protocol's 64-bit range."""
    lines = point_lines(prefix, msg.points)  # all at once when every value is a float (the usual case)
    if lines is not None:
        return lines
    out: list[SeriesPoint | str] = []
    for p in msg.points:
        text = float_fields(p.metrics)
        out.append(f"{prefix} {text} {p.ts}" if text is not None else SeriesPoint(key[0], key[1], p.metrics, p.ts))
    return out


def ingest_filters(root: str, share_group: str | None) -> list[str]:
    """The topic filters the hub subscribes to (status is never shared, see the module doc)."""
    out = []
    for channel in INGEST_CHANNELS:
        flt = subscription(channel, root=root)
        if share_group is not None and channel is not Channel.STATUS:
            flt = shared_subscription(share_group, flt)
        out.append(flt)
    return out


class Ingest:
    """The hub's MQTT subscriber and message processor."""

    def __init__(
        self,
        *,
        registry: DeviceRegistry,
        gaps: GapManager,
        deadletters: DeadLetterStore,
        stats: IngestStats,
        bus: EventBus,
        sinks: list[MessageSink],
        submit_points: PointSubmitter,
        root: str,
        clock: Callable[[], float] = time.time,
        limiter: DeviceRateLimiter | None = None,
        encode_lines: bool = False,
        durable_through: Callable[[], int] | None = None,
        watermark: SeqWatermark | None = None,
    ) -> None:
        self.registry = registry
        self.gaps = gaps
        self.deadletters = deadletters
        self.stats = stats
        self.bus = bus
        self.sinks = sinks
        self.submit_points = submit_points
        self.root = root
        self.clock = clock
        self.limiter = limiter
        #: Encode all-float telemetry points to line protocol here (the writer's store takes lines): the
        #: writer passes them through, and no SeriesPoint is built for them. Other points go as points.
        self.encode_lines = encode_lines
        #: The series writer's ``durable_through``: with it, a message is acknowledged to the broker only
        #: once its points are written or spooled (the ticket ``submit_points`` returned), so a kill -9
        #: of the hub loses nothing -- the broker delivers the unacknowledged messages again.
        self.durable_through = durable_through
        #: With ``durable_through``: the seqs acknowledged, kept in step with the PUBACKs (hub.ingest.watermark).
        self.watermark = watermark
        self._prefixes: dict[str, tuple[object, str | None]] = {}  # device id -> (series key, line prefix)
        self.lock = registry.lock
        self.link: MqttLink | None = None
        self._connected = threading.Event()
        self._topics: dict[str, Topic] = {}
        self._names: dict[bytes, str] = {}  # topic bytes -> str, cached like the parsed topics
        #: Points of link-delivered messages not yet submitted (None: submit per message, as for direct calls).
        self._held: list[SeriesPoint | str] | None = None
        self._sink_calls: dict[str, list[Callable[..., Any]]] = {}  # bound sink methods per name
        self._sinks_seen = -1

    # ------------------------------------------------------------- processing

    def process(self, topic_name: str, payload: bytes, received_ms: int) -> None:
        """Accept one message or raise :class:`WireError` (the caller dead-letters it)."""
        t = self._topics.get(topic_name)
        if t is None:
            t = parse_topic(topic_name, self.root)
            if len(self._topics) >= TOPIC_CACHE_SIZE:
                self._topics.clear()
            self._topics[topic_name] = t
        channel = t.channel
        self.stats.messages[channel] += 1  # a StrEnum: counts under its string value
        if channel is _TELEMETRY:  # the bulk of the traffic: the general path below without its type tests
            tel = cast(Telemetry, decode(channel, payload))
            with self.lock:
                rec = self.registry.ensure(t.site, t.device_id)
                if self._new_seq(rec, tel.seq, received_ms):
                    self._telemetry(rec, tel, received_ms)
            return
        if channel is Channel.SNAPSHOT:
            sha = check_snapshot(payload)
            with self.lock:
                rec = self.registry.ensure(t.site, t.device_id)
                self._call_sinks("on_snapshot", rec.device_ref(), t.event_id, payload, sha, received_ms)
            return
        if channel is Channel.CMD:
            return  # our own commands, if a broker echoes them; nothing to do
        msg = decode(channel, payload)
        with self.lock:
            rec = self.registry.ensure(t.site, t.device_id)
            if isinstance(msg, Status):
                outcome = self.registry.apply_status(rec, msg, received_ms)
                if outcome is StatusOutcome.RESET:
                    self.gaps.reset(rec.id, received_ms)
                    if self.watermark is not None:
                        self.watermark.forget(rec)
                if outcome is not StatusOutcome.STALE:
                    self._call_sinks("on_status", rec.device_ref(), msg, received_ms)
                return
            if not isinstance(msg, _SEQUENCED):
                raise WireError("bad_channel", f"{type(msg).__name__} is not something a device sends")
            if not self._new_seq(rec, msg.seq, received_ms):
                return
            if isinstance(msg, Event):  # (telemetry took its own path above)
                self._call_sinks("on_event", rec.device_ref(), msg, received_ms)
            elif isinstance(msg, GapNotice):
                self.gaps.declare(rec, msg, received_ms)
            else:
                self._call_sinks("on_ack", rec.device_ref(), msg, received_ms)
                self.bus.publish(
                    "cmd_ack", {"device_id": rec.id, "id": msg.id, "result": msg.result.value, "detail": msg.detail}
                )

    def _new_seq(self, rec: DeviceRecord, seq: int, received_ms: int) -> bool:
        """Dedup and gaps for a sequenced message; when new, the registry and the watermark see it."""
        if not self.gaps.observe(rec, seq, received_ms):
            return False
        self.registry.touch(rec, received_ms, seq)
        if self.watermark is not None:
            self.watermark.note(rec)
        return True

    def _telemetry(self, rec: DeviceRecord, msg: Telemetry, received_ms: int) -> None:
        key = rec.series_key()
        points: Sequence[SeriesPoint | str]
        if self.encode_lines and (prefix := self._line_prefix(rec.id, key)) is not None:
            points = telemetry_lines(key, prefix, msg)
        else:
            measurement, tags = key
            points = [SeriesPoint(measurement, tags, p.metrics, p.ts) for p in msg.points]
        self.registry.update_latest_points(rec, msg.points)
        if not msg.hist:
            self.stats.lag.observe(max(0.0, (received_ms - msg.ts) / 1000.0))
        if self._held is not None:
            self._held += points  # handed on in one submit before the link acknowledges them
        else:
            self.submit_points(points)
        self._call_sinks("on_telemetry", rec.device_ref(), msg, received_ms)

    def _line_prefix(self, device_id: str, key: tuple[str, Mapping[str, str]]) -> str | None:
        """The line-protocol prefix of a device's series key (None if it cannot be encoded: the
        writer then gets points and dead-letters them with the reason). Cached per device until the
        registry hands out a new key (its identity changed)."""
        cached = self._prefixes.get(device_id)
        if cached is not None and cached[0] is key:
            return cached[1]
        try:
            prefix: str | None = series_prefix(*key)
        except LineProtocolError:
            prefix = None
        if len(self._prefixes) >= TOPIC_CACHE_SIZE:
            self._prefixes.clear()
        self._prefixes[device_id] = (key, prefix)
        return prefix

    def _call_sinks(self, method: str, *args: Any) -> None:
        calls = self._sink_calls.get(method)
        if calls is None or self._sinks_seen != len(self.sinks):  # plug-ins add sinks before ingest starts
            calls = self._bind_sinks(method)
        for fn in calls:
            try:
                fn(*args)
            except Exception:  # a sink must not stop ingest; counted and logged
                self.stats.sink_errors += 1
                logger.exception("sink %s.%s failed", type(getattr(fn, "__self__", fn)).__name__, method)

    def _bind_sinks(self, method: str) -> list[Callable[..., Any]]:
        if self._sinks_seen != len(self.sinks):
            self._sink_calls.clear()
            self._sinks_seen = len(self.sinks)
        calls = [fn for sink in self.sinks if (fn := getattr(sink, method, None)) is not None]
        self._sink_calls[method] = calls
        return calls

    def handle(self, topic_name: str, payload: bytes, received_ms: int) -> bool:
        """Process one message; dead-letter it instead of raising. True when accepted."""
        if self.limiter is not None and not self._admit(topic_name, payload, received_ms):
            return False
        try:
            self.process(topic_name, payload, received_ms)
            return True
        except WireError as exc:
            self.deadletters.add(
                topic_name, payload, exc.reason, exc.detail, received_ms, device_id=_device_of(topic_name, self.root)
            )
        except Exception as exc:  # loop boundary: a bug must not stop ingest
            logger.exception("ingest failed on %s", topic_name)
            self.deadletters.add(
                topic_name, payload, "internal", repr(exc), received_ms, device_id=_device_of(topic_name, self.root)
            )
        return False

    def _admit(self, topic_name: str, payload: bytes, received_ms: int) -> bool:
        """Charge the sending device's token bucket; dead-letter the message (``rate_limited``) when it is empty."""
        assert self.limiter is not None
        t = self._topics.get(topic_name)
        if t is not None:
            site, device = t.site, t.device_id
        else:
            levels = topic_name.split("/", 4)
            site, device = (levels[2], levels[3]) if len(levels) == 5 else ("", topic_name[:64])
        verdict = self.limiter.admit(device, len(payload), received_ms / 1000.0)
        if verdict.allowed:
            if verdict.ended:
                self._rate_event(site, device, EventState.CLEARED, received_ms)
            return True
        self.deadletters.add(
            topic_name,
            payload,
            "rate_limited",
            f"device over its rate limit ({self.limiter.rate:g} msg/s, burst {self.limiter.burst:g})",
            received_ms,
            device_id=device if is_valid_id(device) else None,
        )
        if verdict.started:
            self._rate_event(site, device, EventState.ACTIVE, received_ms)
        return False

    def _rate_event(self, site: str, device: str, state: EventState, received_ms: int) -> None:
        """Tell the sinks (incidents) once per episode, as a hub-made ``rate_limited`` device event."""
        verb = "exceeds" if state is EventState.ACTIVE else "is back within"
        logger.warning("device %r %s its rate limit", device, verb)
        self.bus.publish("alert", {"kind": "rate_limited", "device_id": device, "state": state.value})
        if not (is_valid_id(site) and is_valid_id(device)):
            return
        event = Event(
            seq=0,
            ts=received_ms,
            event_id=f"rate-limit-{received_ms}",
            type="rate_limited",
            state=state,
            severity=Severity.MINOR,
            message="device sends more messages than its rate limit; the excess is in the dead letter",
        )
        with self.lock:
            rec = self.registry.devices.get(device)
            ref = rec.device_ref() if rec is not None else DeviceRef(device, site, None, None)
            self._call_sinks("on_event", ref, event, received_ms)

    # ------------------------------------------------------------------ MQTT

    @property
    def connected(self) -> bool:
        """True while the MQTT connection is up."""
        return self._connected.is_set()

    def start(
        self,
        host: str,
        port: int,
        client_id: str,
        share_group: str | None,
        keepalive: int = 30,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
    ) -> None:
        """Connect (retrying in the background) with a persistent session and subscribe."""
        filters = ingest_filters(self.root, share_group)

        def on_connect() -> None:
            self._connected.set()
            logger.info("ingest connected to %s:%s as %s, subscribed %s", host, port, client_id, filters)

        def on_disconnect(reason: str) -> None:
            self._connected.clear()
            # Messages handled but not acknowledged come again and dedup drops them: keep their points now.
            self._submit_held()
            logger.warning("ingest disconnected from %s:%s: %s", host, port, reason)

        link = MqttLink(
            host,
            port,
            client_id=client_id,
            subscriptions=[(f, 1) for f in filters],
            on_message=self._on_link_message,
            clean_session=False,
            keepalive=keepalive,
            username=username,
            password=password,
            tls=tls,
            ca_file=ca_file,
            on_connect=on_connect,
            on_disconnect=on_disconnect,
            before_ack=self._submit_held,
            released=self._released if self.durable_through is not None else None,
            reconnect_min_s=1.0,
            reconnect_max_s=5.0,
            name="hub-ingest",
        )
        link.start()
        self.link = link

    def _on_link_message(self, topic_raw: bytes, payload: bytes, _qos: int) -> None:
        """One message from the link's I/O thread (acknowledged to the broker after this returns)."""
        received_ms = int(self.clock() * 1000)
        name = self._names.get(topic_raw)
        if name is None:
            try:
                name = topic_raw.decode("utf-8")
            except UnicodeDecodeError:
                self.deadletters.add(repr(topic_raw)[:512], payload, "bad_topic", "topic is not UTF-8", received_ms)
                return
            if len(self._names) >= TOPIC_CACHE_SIZE:
                self._names.clear()
            self._names[topic_raw] = name
        if self._held is None:
            self._held = []
        self.handle(name, payload, received_ms)

    def _submit_held(self) -> int | None:
        """Hand the points of the messages received so far to the series writer (one submit per chunk,
        not one per message); the link calls this before it acknowledges them to the broker. Returns
        the writer's ticket for them (the link holds the PUBACKs until it is durable), or None."""
        held, self._held = self._held, None
        ticket = None
        if held:
            submitted = self.submit_points(held)
            ticket = submitted if isinstance(submitted, int) else None
        if self.watermark is not None:
            self.watermark.seal(ticket)
        return ticket

    def _released(self) -> int:
        """How far the link may acknowledge: the writer's durable ticket, once the seqs up to it are
        journalled (a journal that cannot be written raises: nothing is acknowledged)."""
        assert self.durable_through is not None
        through = self.durable_through()
        if self.watermark is not None:
            self.watermark.release(through)
        return through

    def wake_link(self) -> None:
        """The writer made more points durable: let the link send the acknowledgements it holds."""
        link = self.link
        if link is not None:
            link.wake()

    def stop(self) -> None:
        """Disconnect cleanly (the broker keeps the session for the next start)."""
        link, self.link = self.link, None
        if link is not None:
            link.stop()
        self._submit_held()  # (normally done by the link before its last acknowledgements)
        self._connected.clear()

    def send_command(self, device: DeviceRef, command: Command) -> None:
        """Publish ``command`` on the device's ``cmd`` topic (QoS 1)."""
        link = self.link
        if link is None or not self.connected:
            raise ConnectionError(f"no MQTT connection to send {command.op!r} to {device.device_id}")
        name = topic(device.site, device.device_id, Channel.CMD, root=self.root)
        link.publish(name, encode(command), qos=1)


def standalone_ingest(
    sessions: sessionmaker[Session],
    *,
    submit_points: PointSubmitter,
    root: str,
    sinks: list[MessageSink] | None = None,
    deadletter_cap: int | None = None,
    encode_lines: bool = False,
    durable_through: Callable[[], int] | None = None,
    journal: Path | None = None,
) -> Ingest:
    """An :class:`Ingest` with its own registry, gaps, dead letter, stats and bus on ``sessions``, fed
    through :meth:`Ingest.handle` (no broker): for benchmarks and tests. The hub wires its own.

    With ``durable_through`` and ``journal``, wired as the hub does when it acknowledges durable
    points only: the registry loaded, the seq watermark at ``journal`` resumed (hub.ingest.watermark)."""
    stats = IngestStats()
    registry = DeviceRegistry(sessions, stats)
    bus = EventBus()
    gaps = GapManager(sessions, stats, bus, registry.lock)
    watermark = None
    if journal is not None:
        registry.load()
        watermark, _, _ = resume_with_journal(journal, registry, gaps)
    cap = {} if deadletter_cap is None else {"cap": deadletter_cap}
    return Ingest(
        registry=registry,
        gaps=gaps,
        deadletters=DeadLetterStore(sessions, stats, **cap),
        stats=stats,
        bus=bus,
        sinks=[] if sinks is None else sinks,
        submit_points=submit_points,
        root=root,
        encode_lines=encode_lines,
        durable_through=durable_through,
        watermark=watermark,
    )


def _device_of(topic_name: str, root: str) -> str | None:
    try:
        return parse_topic(topic_name, root).device_id
    except TopicError:
        return None
