"""The GridSentinel wire contract, version 1: topics, payloads, limits.

This package is the only place that builds or parses MQTT topics and payloads. The edge
agent, the hub and the simulators all import it; nobody formats a topic string
anywhere else. It needs nothing beyond the standard library, so an edge box can
import it with only the base install; when orjson is installed (the ``edge`` and
``hub`` extras) :func:`decode` parses with it and falls back to the standard
library whenever it cannot prove the two agree (see :func:`load_json`).

Topics
    ``{root}/v1/{site}/{device_id}/{channel}`` where ``channel`` is one of
    ``status``, ``telemetry``, ``event``, ``gap``, ``snapshot/{event_id}``,
    ``cmd`` (hub -> device) and ``cmd/ack`` (device -> hub). ``root`` defaults
    to ``gs``. ``site`` and ``device_id`` match ``^[a-z0-9][a-z0-9_-]{0,63}$``,
    so they can never carry ``+``, ``#``, ``/``, NUL or upper case.

Payloads
    UTF-8 JSON objects carrying ``"v": 1``. Every message a device sends on
    ``telemetry``, ``event``, ``gap`` and ``cmd/ack`` carries ``seq``, a
    per-device sequence number that is monotonic across restarts, and ``ts``, the
    device time in integer milliseconds since the Unix epoch. ``status`` is the
    exception: it is retained and its offline form is the broker-held LWT, so it
    is ordered by its session ``epoch`` instead of ``seq``. Snapshots are raw
    JPEG bytes; their SHA-256 travels in the event that refers to them.

Limits
    JSON payloads are capped at :data:`MAX_PAYLOAD_BYTES`, snapshots at
    :data:`MAX_SNAPSHOT_BYTES`. Duplicate keys, NaN/Infinity, integers outside
    64 bits (or longer than Python's 4300-digit parse limit), invalid UTF-8, lone
    UTF-16 surrogates (``"\\ud800"``, which no store can encode), unknown
    versions, nesting beyond the schema (or deeper than :data:`MAX_DEPTH` under
    keys the schema does not know, which are otherwise ignored for forward
    compatibility) and timestamps outside 2000..2100 are refused with a
    :class:`PayloadError` whose ``reason`` is a short stable code (the dead letter
    stores it, with the payload, so nothing refused is lost) and whose message
    says what was wrong.

The package's parts: :mod:`~edge.wire.contract` (version, limits, errors, enums, ids),
:mod:`~edge.wire.topics`, :mod:`~edge.wire.messages` (dataclasses and encoding),
:mod:`~edge.wire.decoding` (checks and refusals) and :mod:`~edge.wire.jsonload` (the JSON
parsers). Everyone imports the public names from here: ``from edge.wire import decode``.
"""

from __future__ import annotations

from edge.wire.contract import (
    DEFAULT_ROOT,
    GRID_PATTERN,
    ID_PATTERN,
    KIND_OPS,
    KINDS_FAULT_ON_TIMEOUT,
    MAX_ATTRS,
    MAX_DEPTH,
    MAX_INT,
    MAX_KEY_CHARS,
    MAX_METRICS_PER_POINT,
    MAX_PAYLOAD_BYTES,
    MAX_POINTS_PER_MESSAGE,
    MAX_SEQ,
    MAX_SNAPSHOT_BYTES,
    MAX_TEXT_CHARS,
    MAX_TS_MS,
    MAX_TTL_MS,
    METRIC_PATTERN,
    MIN_INT,
    MIN_TS_MS,
    PROTOCOL_VERSION,
    TOPIC_VERSION,
    UNKNOWN_KIND_OPS,
    AckResult,
    Channel,
    CommandOp,
    DeviceKind,
    DeviceState,
    EventState,
    MetricValue,
    PayloadError,
    Scalar,
    Severity,
    TopicError,
    WireError,
    check_id,
    is_valid_grid,
    is_valid_id,
    ops_for,
)
from edge.wire.decoding import (
    check_snapshot,
    decode,
)
from edge.wire.jsonload import (
    load_json,
)
from edge.wire.messages import (
    CHANNEL_OF,
    QOS,
    RETAINED,
    Command,
    CommandAck,
    Event,
    GapNotice,
    Message,
    Point,
    SequencedMessage,
    SnapshotRef,
    Status,
    Telemetry,
    channel_of,
    encode,
    mark_historical,
    to_dict,
)
from edge.wire.topics import (
    Topic,
    parse_topic,
    shared_subscription,
    subscription,
    topic,
)

__all__ = [
    "CHANNEL_OF",
    "DEFAULT_ROOT",
    "GRID_PATTERN",
    "ID_PATTERN",
    "KINDS_FAULT_ON_TIMEOUT",
    "KIND_OPS",
    "MAX_ATTRS",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_KEY_CHARS",
    "MAX_METRICS_PER_POINT",
    "MAX_PAYLOAD_BYTES",
    "MAX_POINTS_PER_MESSAGE",
    "MAX_SEQ",
    "MAX_SNAPSHOT_BYTES",
    "MAX_TEXT_CHARS",
    "MAX_TS_MS",
    "MAX_TTL_MS",
    "METRIC_PATTERN",
    "MIN_INT",
    "MIN_TS_MS",
    "PROTOCOL_VERSION",
    "QOS",
    "RETAINED",
    "TOPIC_VERSION",
    "UNKNOWN_KIND_OPS",
    "AckResult",
    "Channel",
    "Command",
    "CommandAck",
    "CommandOp",
    "DeviceKind",
    "DeviceState",
    "Event",
    "EventState",
    "GapNotice",
    "Message",
    "MetricValue",
    "PayloadError",
    "Point",
    "Scalar",
    "SequencedMessage",
    "Severity",
    "SnapshotRef",
    "Status",
    "Telemetry",
    "Topic",
    "TopicError",
    "WireError",
    "channel_of",
    "check_id",
    "check_snapshot",
    "decode",
    "encode",
    "is_valid_grid",
    "is_valid_id",
    "load_json",
    "mark_historical",
    "ops_for",
    "parse_topic",
    "shared_subscription",
    "subscription",
    "to_dict",
    "topic",
]
