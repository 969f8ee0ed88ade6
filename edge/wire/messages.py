"""The messages of the contract and their encoding: one frozen dataclass per channel, ``encode``
to JSON bytes, and the QoS and retain flag of each channel."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from edge.wire.contract import (
    MAX_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    AckResult,
    Channel,
    DeviceKind,
    DeviceState,
    EventState,
    MetricValue,
    PayloadError,
    Scalar,
    Severity,
)
from edge.wire.jsonload import load_json

# ---------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Status:
    """Retained session status; the offline form is registered as the LWT at connect."""

    state: DeviceState
    epoch: int
    ts: int
    kind: DeviceKind | None = None
    grid: str | None = None
    reason: str | None = None
    agent: str | None = None
    interval_s: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Point:
    """One set of numeric readings taken at device time ``ts`` (ms)."""

    ts: int
    metrics: Mapping[str, MetricValue]


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One or more points; ``hist`` marks data replayed from the device buffer."""

    seq: int
    ts: int
    points: tuple[Point, ...]
    hist: bool = False


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    """What an event says about its evidence image on ``snapshot/{event_id}``."""

    sha256: str | None
    size: int = 0
    status: str = "sent"  # sent | pixelated | withheld
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """An alarm condition raised or cleared on the device."""

    seq: int
    ts: int
    event_id: str
    type: str
    state: EventState
    severity: Severity
    hist: bool = False
    message: str | None = None
    value: float | None = None
    zone: str | None = None
    snapshot: SnapshotRef | None = None
    attrs: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GapNotice:
    """The device had to drop messages ``first..last`` (inclusive); the hub records the loss."""

    seq: int
    ts: int
    first: int
    last: int
    reason: str
    channel: str = "telemetry"


@dataclass(frozen=True, slots=True)
class Command:
    """A hub -> device command.

    ``op`` stays a plain string on the wire (a :class:`CommandOp` value), so an agent older than an op
    answers it with an error ack naming the op instead of dead-lettering it. ``ttl_ms`` is relative: the
    device must not run the command later than ``ttl_ms`` after it *received* it, measured on its own
    clock, so no hub timestamp is ever compared with a device clock (agents before ``ttl_ms`` ignore the
    key, as they ignore every unknown key). ``expires`` is the older absolute form (device-clock ms); the
    hub does not send it, because a device whose clock is off would run or refuse commands by that error.
    """

    id: str
    op: str
    ts: int
    expires: int | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    ttl_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CommandAck:
    """The device's answer to a command."""

    seq: int
    ts: int
    id: str
    result: AckResult
    detail: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


Message: TypeAlias = "Status | Telemetry | Event | GapNotice | Command | CommandAck"
SequencedMessage: TypeAlias = "Telemetry | Event | GapNotice | CommandAck"

CHANNEL_OF: Final[dict[type, Channel]] = {
    Status: Channel.STATUS,
    Telemetry: Channel.TELEMETRY,
    Event: Channel.EVENT,
    GapNotice: Channel.GAP,
    Command: Channel.CMD,
    CommandAck: Channel.CMD_ACK,
}

# ---------------------------------------------------------------------- encoding


def _drop_empty(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None and v != {} and v is not False}


def to_dict(msg: Message) -> dict[str, Any]:
    """The JSON object for ``msg`` (without defaults that decoding restores)."""
    if isinstance(msg, Telemetry):
        body: dict[str, Any] = {"v": PROTOCOL_VERSION, "seq": msg.seq, "ts": msg.ts}
        if len(msg.points) == 1 and msg.points[0].ts == msg.ts:
            body["metrics"] = dict(msg.points[0].metrics)
        else:
            body["points"] = [{"ts": p.ts, "metrics": dict(p.metrics)} for p in msg.points]
        if msg.hist:
            body["hist"] = True
        return body
    if isinstance(msg, Event):
        snap = None
        if msg.snapshot is not None:
            snap = _drop_empty(
                {
                    "sha256": msg.snapshot.sha256,
                    "size": msg.snapshot.size,
                    "status": msg.snapshot.status,
                    "note": msg.snapshot.note,
                }
            )
        return _drop_empty(
            {
                "v": PROTOCOL_VERSION,
                "seq": msg.seq,
                "ts": msg.ts,
                "event_id": msg.event_id,
                "type": msg.type,
                "state": msg.state.value,
                "severity": msg.severity.value,
                "hist": msg.hist,
                "message": msg.message,
                "value": msg.value,
                "zone": msg.zone,
                "snapshot": snap,
                "attrs": dict(msg.attrs),
            }
        )
    if isinstance(msg, Status):
        return _drop_empty(
            {
                "v": PROTOCOL_VERSION,
                "state": msg.state.value,
                "epoch": msg.epoch,
                "ts": msg.ts,
                "kind": None if msg.kind is None else msg.kind.value,
                "grid": msg.grid,
                "reason": msg.reason,
                "agent": msg.agent,
                "interval_s": msg.interval_s,
                "labels": dict(msg.labels),
            }
        )
    if isinstance(msg, GapNotice):
        return {
            "v": PROTOCOL_VERSION,
            "seq": msg.seq,
            "ts": msg.ts,
            "first": msg.first,
            "last": msg.last,
            "reason": msg.reason,
            "channel": msg.channel,
        }
    if isinstance(msg, Command):
        return _drop_empty(
            {
                "v": PROTOCOL_VERSION,
                "id": msg.id,
                "op": msg.op,
                "ts": msg.ts,
                "expires": msg.expires,
                "ttl_ms": msg.ttl_ms,
                "args": dict(msg.args),
            }
        )
    if isinstance(msg, CommandAck):
        return _drop_empty(
            {
                "v": PROTOCOL_VERSION,
                "seq": msg.seq,
                "ts": msg.ts,
                "id": msg.id,
                "result": msg.result.value,
                "detail": msg.detail,
                "data": dict(msg.data),
            }
        )
    raise TypeError(f"not a wire message: {type(msg).__name__}")


def encode(msg: Message) -> bytes:
    """Encode ``msg`` to compact UTF-8 JSON, refusing anything decode would refuse."""
    try:
        data = json.dumps(to_dict(msg), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except ValueError as exc:
        raise PayloadError("bad_number", str(exc)) from exc
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadError("too_large", f"{len(data)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte cap")
    return data


def mark_historical(payload: bytes) -> bytes:
    """Return a telemetry/event payload with ``hist`` set, for data replayed from a buffer."""
    obj = load_json(payload)
    obj["hist"] = True
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def channel_of(msg: Message) -> Channel:
    """The channel a message travels on."""
    return CHANNEL_OF[type(msg)]


# --------------------------------------------------------------------------- QoS

#: QoS and retain flag per channel (telemetry may be sent QoS 0 when marked lossy).
QOS: Final[dict[Channel, int]] = {
    Channel.STATUS: 1,
    Channel.TELEMETRY: 1,
    Channel.EVENT: 1,
    Channel.GAP: 1,
    Channel.SNAPSHOT: 1,
    Channel.CMD: 1,
    Channel.CMD_ACK: 1,
}
RETAINED: Final = frozenset({Channel.STATUS})
