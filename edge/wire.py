"""The GridSentinel wire contract, version 1: topics, payloads, limits.

This is the only module that builds or parses MQTT topics and payloads. The edge
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
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeAlias, TypeGuard

_orjson_loads: Callable[[bytes], Any] | None
_orjson_dumps: Callable[[Any], bytes] | None
try:
    from orjson import dumps as _orjson_dumps
    from orjson import loads as _orjson_loads
except ImportError:  # the base install: the standard library parser does everything
    _orjson_loads = _orjson_dumps = None

_msgspec_telemetry: Any
_UNSET: Any
try:  # typed one-pass telemetry decoding (see _telemetry_msgspec); the edge and hub extras install it
    from edge import wire_msgspec

    _msgspec_telemetry, _UNSET = wire_msgspec.TELEMETRY_DECODER, wire_msgspec.UNSET
except ImportError:
    _msgspec_telemetry = _UNSET = None

PROTOCOL_VERSION: Final = 1
TOPIC_VERSION: Final = "v1"
DEFAULT_ROOT: Final = "gs"

MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_SNAPSHOT_BYTES: Final = 4 * 1024 * 1024
MAX_POINTS_PER_MESSAGE: Final = 1000
MAX_METRICS_PER_POINT: Final = 128
MAX_ATTRS: Final = 32
MAX_TEXT_CHARS: Final = 1024
MAX_KEY_CHARS: Final = 64
#: Containers nested in one payload, the payload object counting as one (a ``get_config`` ack needs ~7).
MAX_DEPTH: Final = 10
MAX_SEQ: Final = 2**63 - 1
MAX_INT: Final = 2**63 - 1
#: A command's time-to-live: at most a day (a longer-lived command is a schedule, not a command).
MAX_TTL_MS: Final = 86_400_000
MIN_INT: Final = -(2**63)
#: Device timestamps outside [2000-01-01, 2100-01-01) are refused outright.
MIN_TS_MS: Final = 946_684_800_000
MAX_TS_MS: Final = 4_102_444_800_000

ID_PATTERN: Final = r"[a-z0-9][a-z0-9_-]{0,63}"
METRIC_PATTERN: Final = r"[a-z][a-z0-9_]{0,63}"
GRID_PATTERN: Final = r"[0-9]{15}"
_ID_RE: Final = re.compile(ID_PATTERN)
_METRIC_RE: Final = re.compile(METRIC_PATTERN)
_GRID_RE: Final = re.compile(GRID_PATTERN)

Scalar: TypeAlias = "bool | int | float | str"
MetricValue: TypeAlias = "bool | int | float"


class WireError(ValueError):
    """A topic or payload that breaks the contract; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


class TopicError(WireError):
    """A topic that is not a valid v1 device topic."""


class PayloadError(WireError):
    """A payload that cannot be decoded into a v1 message."""


class Channel(StrEnum):
    """The last topic level(s): what a message is."""

    STATUS = "status"
    TELEMETRY = "telemetry"
    EVENT = "event"
    GAP = "gap"
    SNAPSHOT = "snapshot"
    CMD = "cmd"
    CMD_ACK = "cmd/ack"


class DeviceKind(StrEnum):
    """Device kinds; each is one measurement in the time-series store."""

    CAMERA = "camera"
    KIOSK = "kiosk"
    SENSOR = "sensor"


class CommandOp(StrEnum):
    """What a hub may ask a device to do on ``cmd``; the one list agent, hub, CLI and page import."""

    PING = "ping"
    SET_INTERVAL = "set_interval"
    RESEND = "resend"
    SNAPSHOT = "snapshot"
    RELOAD_CONFIG = "reload_config"
    GET_CONFIG = "get_config"


#: Ops an operator may send to each device kind (the page shows these as buttons). ``resend`` is the
#: hub's own gap repair, never an operator's; ``snapshot`` needs a camera.
KIND_OPS: Final[dict[DeviceKind, tuple[CommandOp, ...]]] = {
    DeviceKind.CAMERA: (CommandOp.SNAPSHOT, CommandOp.PING, CommandOp.GET_CONFIG, CommandOp.RELOAD_CONFIG),
    DeviceKind.KIOSK: (CommandOp.PING, CommandOp.GET_CONFIG, CommandOp.RELOAD_CONFIG, CommandOp.SET_INTERVAL),
    DeviceKind.SENSOR: (CommandOp.PING, CommandOp.GET_CONFIG, CommandOp.RELOAD_CONFIG, CommandOp.SET_INTERVAL),
}
#: Ops for a device whose kind the hub does not know yet (no birth message seen).
UNKNOWN_KIND_OPS: Final[tuple[CommandOp, ...]] = (CommandOp.PING, CommandOp.GET_CONFIG)
#: Device kinds whose unanswered commands the hub raises as a device fault: mains-powered boxes that should
#: always answer. Sensors are left out: a battery gateway may sleep through a command's time-to-live.
KINDS_FAULT_ON_TIMEOUT: Final = frozenset({DeviceKind.CAMERA, DeviceKind.KIOSK})


def ops_for(kind: DeviceKind | str | None) -> tuple[CommandOp, ...]:
    """The operator ops of a device kind (a kind this contract does not know gets the minimal set)."""
    if kind is None or kind not in DeviceKind._value2member_map_:
        return UNKNOWN_KIND_OPS
    return KIND_OPS[DeviceKind(kind)]


class Severity(StrEnum):
    """Event and incident severity, lowest first."""

    INFO = "info"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class EventState(StrEnum):
    """An alarm condition on a device is raised (active) and later cleared."""

    ACTIVE = "active"
    CLEARED = "cleared"


class DeviceState(StrEnum):
    """What a status message says about the device's session."""

    ONLINE = "online"
    OFFLINE = "offline"


class AckResult(StrEnum):
    """Outcome of a command on the device."""

    OK = "ok"
    ERROR = "error"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"


# --------------------------------------------------------------------------- ids


def is_valid_id(value: str) -> bool:
    """True when ``value`` may be used as a site, device or event id."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def check_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it is a valid identifier, else raise :class:`TopicError`."""
    if not isinstance(value, str) or _ID_RE.fullmatch(value) is None:
        raise TopicError(
            "bad_id",
            f"{what} {value!r} must match ^{ID_PATTERN}$ "
            "(lower-case letters, digits, '_' and '-', at most 64, no + # / or NUL)",
        )
    return value


def is_valid_grid(value: str) -> bool:
    """True for a 15-digit grid code (6 district + 3 street + 3 community + 3 sequence)."""
    return isinstance(value, str) and _GRID_RE.fullmatch(value) is not None


# ------------------------------------------------------------------------ topics


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed device topic. ``str(topic)`` gives the MQTT topic name."""

    site: str
    device_id: str
    channel: Channel
    event_id: str | None = None
    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        check_id(self.root, "root")
        check_id(self.site, "site")
        check_id(self.device_id, "device_id")
        if self.channel is Channel.SNAPSHOT:
            check_id(self.event_id, "event_id")
        elif self.event_id is not None:
            raise TopicError("bad_topic", f"only snapshot topics carry an event id, not {self.channel}")

    def __str__(self) -> str:
        tail = f"snapshot/{self.event_id}" if self.channel is Channel.SNAPSHOT else self.channel.value
        return f"{self.root}/{TOPIC_VERSION}/{self.site}/{self.device_id}/{tail}"


def topic(
    site: str,
    device_id: str,
    channel: Channel,
    *,
    event_id: str | None = None,
    root: str = DEFAULT_ROOT,
) -> str:
    """Build a device topic name, validating every level."""
    return str(Topic(site, device_id, channel, event_id, root))


_CHANNELS_BY_TAIL: Final = {c.value: c for c in Channel if c is not Channel.SNAPSHOT}


def parse_topic(name: str, root: str = DEFAULT_ROOT) -> Topic:
    """Parse a topic name into a :class:`Topic`; raise :class:`TopicError` if it is not one."""
    if not isinstance(name, str) or len(name) > 512:
        raise TopicError("bad_topic", "topic must be a string of at most 512 characters")
    parts = name.split("/")
    if len(parts) < 5 or len(parts) > 6:
        raise TopicError("bad_topic", f"{name!r} is not {root}/{TOPIC_VERSION}/<site>/<device>/<channel>")
    if parts[0] != root:
        raise TopicError("bad_topic", f"{name!r} does not start with root {root!r}")
    if parts[1] != TOPIC_VERSION:
        raise TopicError("unknown_version", f"topic version {parts[1]!r} is not {TOPIC_VERSION}")
    site, device_id = parts[2], parts[3]
    tail = "/".join(parts[4:])
    if len(parts) == 6 and parts[4] == "snapshot":
        return Topic(site, device_id, Channel.SNAPSHOT, parts[5], root)
    channel = _CHANNELS_BY_TAIL.get(tail)
    if channel is None:
        raise TopicError("bad_channel", f"unknown channel {tail!r} in {name!r}")
    return Topic(site, device_id, channel, None, root)


def subscription(
    channel: Channel | None = None,
    *,
    site: str | None = None,
    device_id: str | None = None,
    root: str = DEFAULT_ROOT,
) -> str:
    """An MQTT topic filter: ``None`` for a level means any (``+``); no channel means all (``#``)."""
    site_level = "+" if site is None else check_id(site, "site")
    device_level = "+" if device_id is None else check_id(device_id, "device_id")
    check_id(root, "root")
    if channel is None:
        tail = "#"
    elif channel is Channel.SNAPSHOT:
        tail = "snapshot/+"
    else:
        tail = channel.value
    return f"{root}/{TOPIC_VERSION}/{site_level}/{device_level}/{tail}"


def shared_subscription(group: str, topic_filter: str) -> str:
    """An MQTT shared subscription filter (``$share/{group}/{filter}``) for hub replicas."""
    check_id(group, "share group")
    return f"$share/{group}/{topic_filter}"


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

# ---------------------------------------------------------------------- decoding


def _reject_constant(name: str) -> Any:
    raise PayloadError("bad_number", f"{name} is not a number the contract accepts")


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise PayloadError("duplicate_key", f"key {dup!r} appears more than once")
    return obj


# Built once: json.loads(..., object_pairs_hook=...) would build a decoder per call (~2 µs).
_JSON_DECODER: Final = json.JSONDecoder(object_pairs_hook=_pairs_no_duplicates, parse_constant=_reject_constant)


def _nested(value: object, budget: int, where: str) -> None:
    """Refuse containers nested more than ``budget`` levels inside ``value`` (only containers are visited)."""
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return
    if budget <= 0:
        raise PayloadError("too_deep", f"{where} nests containers deeper than {MAX_DEPTH} levels")
    for item in items:
        if isinstance(item, (dict, list)):
            _nested(item, budget - 1, where)


def _check_unicode(value: object) -> None:
    """Refuse strings holding lone surrogates (from ``\\udXXX`` escapes), which cannot be encoded to UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PayloadError("bad_unicode", f"string holds a lone surrogate at {exc.start}") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key)
            _check_unicode(item)
    elif isinstance(value, list):
        for item in value:
            _check_unicode(item)


def _extras(obj: Mapping[str, Any], known: frozenset[str], depth: int, where: str) -> None:
    """Keys the schema does not know are ignored, but their values must stay within :data:`MAX_DEPTH`."""
    if obj.keys() <= known:
        return
    for key in obj.keys() - known:
        if len(key) > MAX_KEY_CHARS:
            raise PayloadError("schema", f"{where} key of {len(key)} characters exceeds {MAX_KEY_CHARS}")
        _nested(obj[key], MAX_DEPTH - depth, f"{where}.{key[:MAX_KEY_CHARS]}")


#: Floats at least this large may be integer literals orjson could not hold in 64 bits (it returns
#: those as floats where the standard library gives ints): such payloads take the standard path.
_FAST_FLOAT_LIMIT: Final = 2.0**63
#: Containers nested deeper than this take the standard path (orjson writes at most 254 levels, so
#: the re-encoding proof stops there too). Parsing that deep the standard parser needs about as many
#: of the interpreter's ~1000 recursion levels; deeper, its refusal would depend on the caller's stack.
_FAST_MAX_DEPTH: Final = 254


def _plain_key_count(value: dict[str, Any] | list[Any], depth: int) -> int:
    """Keys in all objects inside ``value``, or -1 if a float may hide an integer or nesting is deep."""
    if depth > _FAST_MAX_DEPTH:
        return -1
    if type(value) is dict:
        count = len(value)
        items: Any = value.values()
    else:
        count = 0
        items = value
    for item in items:
        kind = type(item)
        if kind is float:
            if not -_FAST_FLOAT_LIMIT < item < _FAST_FLOAT_LIMIT:
                return -1
        elif kind is dict or kind is list:
            inner = _plain_key_count(item, depth + 1)
            if inner < 0:
                return -1
            count += inner
    return count


def _reencodes_to(obj: dict[str, Any], payload: bytes) -> bool:
    """True when orjson writes ``obj`` back as exactly ``payload`` (compact JSON, as our encoder writes)."""
    assert _orjson_dumps is not None
    try:
        return _orjson_dumps(obj) == payload
    except TypeError:  # nested deeper than orjson writes
        return False


def _fast_object(payload: bytes) -> dict[str, Any] | None:
    """Parse with orjson; None unless the result is provably what the standard path would return.

    orjson refuses everything the contract refuses at parse time (invalid UTF-8, NaN and
    Infinity, numbers that overflow a double, lone surrogates, nesting past 1024) and
    reads floats exactly as the standard library does (both round correctly), except two
    things it accepts silently: duplicate keys (it keeps the last) and integers beyond
    64 bits (it returns a float, of magnitude >= 2**63). Either proof rules both out:

    - re-encoding: if orjson writes the parsed object back as exactly the payload, the
      payload is the text of a dict (no key twice) whose numbers all read back as they
      are (an integer literal never comes back as float text, which has ``.`` or ``e``);
    - counting: every ``:`` byte in valid JSON separates one object member or sits inside
      a string, so ``payload.count(b":")`` is the members written plus the colons in
      strings, while a dropped duplicate leaves the parsed objects with fewer keys than
      members written: the parsed key count can only equal the colon count when no key
      is duplicated (and no string holds a colon); floats of magnitude >= 2**63 refuse it.
    """
    assert _orjson_loads is not None
    try:
        obj = _orjson_loads(payload)
    except Exception:  # any refusal: the standard path decides, and names the reason
        return None
    if type(obj) is not dict:
        return None
    if not _reencodes_to(obj, payload) and _plain_key_count(obj, 1) != payload.count(b":"):
        return None
    if b"\\u" in payload:  # orjson refuses lone surrogates itself; checked so the contract does not rest on it
        _check_unicode(obj)
    return obj


def _stdlib_object(payload: bytes) -> dict[str, Any]:
    """Parse with the standard library; the reference for every refusal's reason and text."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("bad_utf8", f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        obj = _JSON_DECODER.decode(text)
    except PayloadError:
        raise
    except RecursionError as exc:
        raise PayloadError("too_deep", "JSON nesting is far deeper than the schema") from exc
    except ValueError as exc:  # json.JSONDecodeError and int digit limits
        raise PayloadError("bad_json", str(exc)) from exc
    if not isinstance(obj, dict):
        raise PayloadError("schema", f"payload must be a JSON object, not {type(obj).__name__}")
    if "\\u" in text:  # only an escape can produce a lone surrogate; our encoder never writes one
        _check_unicode(obj)
    return obj


def load_json(payload: bytes, *, fast: bool = True) -> dict[str, Any]:
    """Parse a JSON object under the contract's limits (size, UTF-8, duplicates, NaN, surrogates).

    With orjson installed and ``fast`` set, orjson parses first; whatever it refuses, or
    accepts without proof that the standard library would return the same object, is
    parsed again by the standard library, so results and refusals never depend on it.
    ``fast=False`` forces the standard library (the reference the fast path is tested against).
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("too_large", f"{len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte cap")
    obj = _fast_object(payload) if fast and _orjson_loads is not None else None
    if obj is None:
        obj = _stdlib_object(payload)
    version = obj.get("v")
    if version != PROTOCOL_VERSION:
        raise PayloadError("unknown_version", f"payload version {version!r} is not {PROTOCOL_VERSION}")
    return obj


def _int(obj: Mapping[str, Any], key: str, lo: int = 0, hi: int = MAX_INT) -> int:
    value = obj.get(key)
    if type(value) is not int:
        raise PayloadError("schema", f"{key!r} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise PayloadError("out_of_range", f"{key!r}={value} outside [{lo}, {hi}]")
    return value


def _opt_int(obj: Mapping[str, Any], key: str, lo: int = 0, hi: int = MAX_INT) -> int | None:
    return None if obj.get(key) is None else _int(obj, key, lo, hi)


def _ts(obj: Mapping[str, Any], key: str = "ts") -> int:
    value = obj.get(key)
    if type(value) is not int:
        raise PayloadError("schema", f"{key!r} must be integer milliseconds since the epoch")
    if not MIN_TS_MS <= value < MAX_TS_MS:
        raise PayloadError("bad_timestamp", f"{key!r}={value} is not between 2000 and 2100")
    return value


def _str(obj: Mapping[str, Any], key: str, *, optional: bool = False, limit: int = MAX_TEXT_CHARS) -> str:
    value = obj.get(key)
    if value is None and optional:
        return None  # type: ignore[return-value]
    if not isinstance(value, str):
        raise PayloadError("schema", f"{key!r} must be a string")
    if len(value) > limit or "\x00" in value:
        raise PayloadError("schema", f"{key!r} is longer than {limit} characters or holds NUL")
    return value


def _bool(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if type(value) is not bool:
        raise PayloadError("schema", f"{key!r} must be true or false")
    return value


def _enum(obj: Mapping[str, Any], key: str, enum: type[StrEnum], default: str | None = None) -> Any:
    value = obj.get(key, default)
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise PayloadError("schema", f"{key!r}={value!r} is not one of: {allowed}") from None


def _number(value: object, where: str) -> MetricValue:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise PayloadError("bad_number", f"{where} is not finite")
        return value  # type: ignore[return-value]
    if kind is int:
        if not MIN_INT <= value <= MAX_INT:  # type: ignore[operator]
            raise PayloadError("bad_number", f"{where} does not fit in 64 bits")
        return value  # type: ignore[return-value]
    if kind is bool:
        return value  # type: ignore[return-value]
    raise PayloadError("schema", f"{where} must be a number or boolean, got {kind.__name__}")


def _metrics(raw: object, where: str) -> dict[str, MetricValue]:
    if not isinstance(raw, dict) or not raw:
        raise PayloadError("schema", f"{where} must be a non-empty object of metric -> number")
    if len(raw) > MAX_METRICS_PER_POINT:
        raise PayloadError("too_large", f"{where} has {len(raw)} metrics, more than {MAX_METRICS_PER_POINT}")
    for name, value in raw.items():
        if _METRIC_RE.fullmatch(name) is None:
            raise PayloadError("bad_metric", f"metric name {name!r} must match ^{METRIC_PATTERN}$")
        _number(value, f"{where}.{name}")
    return raw


def _flat(raw: object, key: str, limit: int = MAX_ATTRS) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > limit:
        raise PayloadError("schema", f"{key!r} must be an object of at most {limit} entries")
    for k, v in raw.items():
        if len(k) > MAX_KEY_CHARS or "\x00" in k:
            raise PayloadError(
                "schema", f"{key!r} key {k[:MAX_KEY_CHARS]!r}... is longer than {MAX_KEY_CHARS} or holds NUL"
            )
        if isinstance(v, (dict, list)):
            raise PayloadError("too_deep", f"{key}.{k} must be a scalar, not a nested {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise PayloadError("bad_number", f"{key}.{k} is not finite")
        if isinstance(v, str) and len(v) > MAX_TEXT_CHARS:
            raise PayloadError("schema", f"{key}.{k} is longer than {MAX_TEXT_CHARS} characters")
        if isinstance(v, int) and not MIN_INT <= v <= MAX_INT:
            raise PayloadError("bad_number", f"{key}.{k} does not fit in 64 bits")
    return raw


def _status(obj: dict[str, Any]) -> Status:
    grid = obj.get("grid")
    if grid is not None and not is_valid_grid(grid):
        raise PayloadError("schema", f"'grid'={grid!r} is not a 15-digit grid code")
    labels = _flat(obj.get("labels"), "labels")
    if any(not isinstance(v, str) for v in labels.values()):
        raise PayloadError("schema", "'labels' values must be strings")
    interval = obj.get("interval_s")
    return Status(
        state=_enum(obj, "state", DeviceState),
        epoch=_int(obj, "epoch"),
        ts=_ts(obj),
        kind=None if obj.get("kind") is None else _enum(obj, "kind", DeviceKind),
        grid=grid,
        reason=_str(obj, "reason", optional=True),
        agent=_str(obj, "agent", optional=True, limit=64),
        interval_s=None if interval is None else float(_number(interval, "interval_s")),
        labels=labels,
    )


def _telemetry(obj: dict[str, Any]) -> Telemetry:
    seq, ts = _int(obj, "seq", 0, MAX_SEQ), _ts(obj)
    raw_points = obj.get("points")
    if raw_points is None:
        points: tuple[Point, ...] = (Point(ts, _metrics(obj.get("metrics"), "metrics")),)
    else:
        if "metrics" in obj:
            raise PayloadError("schema", "give either 'metrics' or 'points', not both")
        if not isinstance(raw_points, list) or not raw_points:
            raise PayloadError("schema", "'points' must be a non-empty list")
        if len(raw_points) > MAX_POINTS_PER_MESSAGE:
            raise PayloadError("too_large", f"{len(raw_points)} points exceeds {MAX_POINTS_PER_MESSAGE}")
        pts = []
        for i, raw in enumerate(raw_points):
            if not isinstance(raw, dict):
                raise PayloadError("schema", f"points[{i}] must be an object")
            _extras(raw, _POINT_KEYS, 3, f"points[{i}]")
            pts.append(Point(_ts(raw) if "ts" in raw else ts, _metrics(raw.get("metrics"), f"points[{i}].metrics")))
        points = tuple(pts)
    return Telemetry(seq=seq, ts=ts, points=points, hist=_bool(obj, "hist"))


#: Metric names already matched against :data:`METRIC_PATTERN`; cleared when full, so it stays bounded.
_KNOWN_METRIC_NAMES: Final[set[str]] = set()
_KNOWN_METRIC_NAMES_MAX: Final = 4096
_INF: Final = math.inf


def _metrics_ok(raw: object) -> TypeGuard[dict[str, MetricValue]]:
    """True when :func:`_metrics` accepts ``raw``; checked without building any error text."""
    if type(raw) is not dict or not 0 < len(raw) <= MAX_METRICS_PER_POINT:
        return False
    names = _KNOWN_METRIC_NAMES
    for name, value in raw.items():
        if name not in names and not _learn_name(name):
            return False
        kind = type(value)
        if kind is float:
            if not -_INF < value < _INF:  # false for NaN too
                return False
        elif kind is int:
            if not MIN_INT <= value <= MAX_INT:
                return False
        elif kind is not bool:
            return False
    return True


def _learn_name(name: str) -> bool:
    """True (and remembered) when ``name`` matches :data:`METRIC_PATTERN`."""
    if _METRIC_RE.fullmatch(name) is None:
        return False
    if len(_KNOWN_METRIC_NAMES) >= _KNOWN_METRIC_NAMES_MAX:
        _KNOWN_METRIC_NAMES.clear()
    _KNOWN_METRIC_NAMES.add(name)
    return True


def _typed_metrics_ok(metrics: dict[str, MetricValue]) -> bool:
    """:func:`_metrics_ok` for metrics msgspec has typed (values int in 64 bits, finite float or bool):
    only their count and names are left to check, by one set comparison once the names are known."""
    if not 0 < len(metrics) <= MAX_METRICS_PER_POINT:
        return False
    return metrics.keys() <= _KNOWN_METRIC_NAMES or all(
        name in _KNOWN_METRIC_NAMES or _learn_name(name) for name in metrics
    )


# A frozen dataclass's __init__ stores each field through object.__setattr__; the slot descriptors
# store the same values directly, in half the time. Point and Telemetry have no __post_init__
# (tests/edge/test_wire_fast.py checks that these build objects equal to the constructors').
_new_object: Final = object.__new__
_SET_POINT_TS: Final = Point.__dict__["ts"].__set__
_SET_POINT_METRICS: Final = Point.__dict__["metrics"].__set__
_SET_TELEMETRY_SEQ: Final = Telemetry.__dict__["seq"].__set__
_SET_TELEMETRY_TS: Final = Telemetry.__dict__["ts"].__set__
_SET_TELEMETRY_POINTS: Final = Telemetry.__dict__["points"].__set__
_SET_TELEMETRY_HIST: Final = Telemetry.__dict__["hist"].__set__


def _point(ts: int, metrics: dict[str, MetricValue]) -> Point:
    """``Point(ts, metrics)``, built faster."""
    point: Point = _new_object(Point)
    _SET_POINT_TS(point, ts)
    _SET_POINT_METRICS(point, metrics)
    return point


def _telemetry_of(seq: int, ts: int, points: tuple[Point, ...], hist: bool) -> Telemetry:
    """``Telemetry(seq, ts, points, hist)``, built faster."""
    msg: Telemetry = _new_object(Telemetry)
    _SET_TELEMETRY_SEQ(msg, seq)
    _SET_TELEMETRY_TS(msg, ts)
    _SET_TELEMETRY_POINTS(msg, points)
    _SET_TELEMETRY_HIST(msg, hist)
    return msg


def _points_fast(raw_points: list[Any], ts: int) -> tuple[Point, ...] | None:
    """The points of a batch when every one is plain (``ts`` and ``metrics`` only, all valid), else None."""
    points = []
    for raw in raw_points:
        if type(raw) is not dict:
            return None
        if "ts" in raw:
            point_ts = raw["ts"]
            if type(point_ts) is not int or not MIN_TS_MS <= point_ts < MAX_TS_MS or len(raw) != 2:
                return None
        elif len(raw) == 1:
            point_ts = ts
        else:
            return None
        metrics = raw.get("metrics")
        if not _metrics_ok(metrics):
            return None
        points.append(_point(point_ts, metrics))
    return tuple(points)


def _telemetry_fast(obj: dict[str, Any]) -> Telemetry:
    """:func:`_telemetry` for the common shapes; anything else (and every error) goes to :func:`_telemetry`."""
    seq = obj.get("seq")
    ts = obj.get("ts")
    hist = obj.get("hist", False)
    if (
        type(seq) is int
        and 0 <= seq <= MAX_SEQ
        and type(ts) is int
        and MIN_TS_MS <= ts < MAX_TS_MS
        and type(hist) is bool
    ):
        raw_points = obj.get("points")
        if raw_points is None:
            metrics = obj.get("metrics")
            if _metrics_ok(metrics):
                return _telemetry_of(seq, ts, (_point(ts, metrics),), hist)
        elif type(raw_points) is list and 0 < len(raw_points) <= MAX_POINTS_PER_MESSAGE and "metrics" not in obj:
            points = _points_fast(raw_points, ts)
            if points is not None:
                return _telemetry_of(seq, ts, points, hist)
    return _telemetry(obj)


def _telemetry_msgspec(payload: bytes) -> Telemetry | None:
    """The message, decoded by msgspec's typed structs in one pass, when it is provably what the reference
    path returns; None for anything else (the reference path then decides, and names any refusal).

    msgspec has checked the types (ints are never bools or floats, metric values int within 64 bits,
    float -- JSON cannot write NaN or inf, and it refuses what overflows a double -- or bool, ``hist`` a
    bool); the other ranges and the names are checked here as :func:`_telemetry_fast` checks them. msgspec keeps
    the last of duplicate keys and skips unknown ones, so the members it returned are counted: every
    member written has exactly one ``:`` byte outside strings, so the payload's ``:`` count equals the
    members counted only when no key was dropped as a duplicate, none was skipped as unknown and no
    string holds a colon.
    """
    try:
        raw = _msgspec_telemetry.decode(payload)
    except Exception:  # any refusal or doubt: the reference path decides
        return None
    seq, ts, hist = raw.seq, raw.ts, raw.hist
    if raw.v != PROTOCOL_VERSION or not 0 <= seq <= MAX_SEQ or not MIN_TS_MS <= ts < MAX_TS_MS:
        return None
    members = 3
    if hist is _UNSET:
        hist = False
    else:
        members += 1
    metrics, raw_points = raw.metrics, raw.points
    if raw_points is _UNSET:
        if metrics is _UNSET or not _typed_metrics_ok(metrics):
            return None
        members += 1 + len(metrics)
        points: tuple[Point, ...] = (_point(ts, metrics),)
    else:
        if metrics is not _UNSET or not 0 < len(raw_points) <= MAX_POINTS_PER_MESSAGE:
            return None
        members += 1
        pts = []
        known, new, set_ts, set_metrics = _KNOWN_METRIC_NAMES, _new_object, _SET_POINT_TS, _SET_POINT_METRICS
        for item in raw_points:  # _typed_metrics_ok and _point inlined: this loop runs once per point
            point_metrics, point_ts = item.metrics, item.ts
            size = len(point_metrics)
            if not (0 < size <= MAX_METRICS_PER_POINT and point_metrics.keys() <= known) and not _typed_metrics_ok(
                point_metrics
            ):
                return None
            if point_ts is _UNSET:
                point_ts = ts
                members += 1 + size
            elif MIN_TS_MS <= point_ts < MAX_TS_MS:
                members += 2 + size
            else:
                return None
            point = new(Point)
            set_ts(point, point_ts)
            set_metrics(point, point_metrics)
            pts.append(point)
        points = tuple(pts)
    if payload.count(b":") != members:
        return None
    return _telemetry_of(seq, ts, points, hist)


def _snapshot_ref(raw: object) -> SnapshotRef | None:
    if raw is None:
        return None
    ref = _flat(raw, "snapshot", 8)
    sha = ref.get("sha256")
    if sha is not None and (not isinstance(sha, str) or re.fullmatch(r"[0-9a-f]{64}", sha) is None):
        raise PayloadError("schema", "'snapshot.sha256' must be 64 lower-case hex digits")
    status = ref.get("status", "sent")
    if status not in ("sent", "pixelated", "withheld"):
        raise PayloadError("schema", "'snapshot.status' must be sent, pixelated or withheld")
    return SnapshotRef(
        sha256=sha, size=_int(ref, "size") if "size" in ref else 0, status=status, note=_str(ref, "note", optional=True)
    )


def _event(obj: dict[str, Any]) -> Event:
    event_id = obj.get("event_id")
    if not isinstance(event_id, str) or not is_valid_id(event_id):
        raise PayloadError("schema", f"'event_id'={event_id!r} must match ^{ID_PATTERN}$")
    etype = _str(obj, "type", limit=64)
    if _METRIC_RE.fullmatch(etype) is None:
        raise PayloadError("schema", f"'type'={etype!r} must match ^{METRIC_PATTERN}$")
    value = obj.get("value")
    zone = _str(obj, "zone", optional=True, limit=64)
    return Event(
        seq=_int(obj, "seq", 0, MAX_SEQ),
        ts=_ts(obj),
        event_id=event_id,
        type=etype,
        state=_enum(obj, "state", EventState),
        severity=_enum(obj, "severity", Severity, "minor"),
        hist=_bool(obj, "hist"),
        message=_str(obj, "message", optional=True),
        value=None if value is None else float(_number(value, "value")),
        zone=zone,
        snapshot=_snapshot_ref(obj.get("snapshot")),
        attrs=_flat(obj.get("attrs"), "attrs"),
    )


def _gap(obj: dict[str, Any]) -> GapNotice:
    first, last = _int(obj, "first", 0, MAX_SEQ), _int(obj, "last", 0, MAX_SEQ)
    if last < first:
        raise PayloadError("schema", f"gap last={last} is before first={first}")
    return GapNotice(
        seq=_int(obj, "seq", 0, MAX_SEQ),
        ts=_ts(obj),
        first=first,
        last=last,
        reason=_str(obj, "reason", limit=64),
        channel=_str(obj, "channel", optional=True, limit=16) or "telemetry",
    )


def _command(obj: dict[str, Any]) -> Command:
    cmd_id = obj.get("id")
    if not isinstance(cmd_id, str) or not is_valid_id(cmd_id):
        raise PayloadError("schema", f"'id'={cmd_id!r} must match ^{ID_PATTERN}$")
    args = obj.get("args") or {}
    if not isinstance(args, dict):
        raise PayloadError("schema", "'args' must be an object")
    return Command(
        id=cmd_id,
        op=_str(obj, "op", limit=64),
        ts=_ts(obj),
        expires=None if obj.get("expires") is None else _ts(obj, "expires"),
        args=_flat(args, "args"),
        ttl_ms=_opt_int(obj, "ttl_ms", 0, MAX_TTL_MS),
    )


def _ack(obj: dict[str, Any]) -> CommandAck:
    data = obj.get("data") or {}
    if not isinstance(data, dict):
        raise PayloadError("schema", "'data' must be an object")
    _nested(data, MAX_DEPTH - 1, "data")
    return CommandAck(
        seq=_int(obj, "seq", 0, MAX_SEQ),
        ts=_ts(obj),
        id=_str(obj, "id", limit=64),
        result=_enum(obj, "result", AckResult),
        detail=_str(obj, "detail", optional=True),
        data=data,
    )


_DECODERS: Final[dict[Channel, Callable[[dict[str, Any]], Message]]] = {
    Channel.STATUS: _status,
    Channel.TELEMETRY: _telemetry,
    Channel.EVENT: _event,
    Channel.GAP: _gap,
    Channel.CMD: _command,
    Channel.CMD_ACK: _ack,
}


#: The same checks, with cheaper paths for the common shapes (still the reference for every error).
_FAST_DECODERS: Final[dict[Channel, Callable[[dict[str, Any]], Message]]] = {
    **_DECODERS,
    Channel.TELEMETRY: _telemetry_fast,
}

_POINT_KEYS: Final = frozenset({"ts", "metrics"})
#: Top-level keys each channel's schema reads; others are ignored (but depth-limited).
_KNOWN_KEYS: Final[dict[Channel, frozenset[str]]] = {
    Channel.STATUS: frozenset({"v", "state", "epoch", "ts", "kind", "grid", "reason", "agent", "interval_s", "labels"}),
    Channel.TELEMETRY: frozenset({"v", "seq", "ts", "points", "metrics", "hist"}),
    Channel.EVENT: frozenset(
        {"v", "seq", "ts", "event_id", "type", "state", "severity", "hist", "message", "value", "zone", "snapshot"}
        | {"attrs"}
    ),
    Channel.GAP: frozenset({"v", "seq", "ts", "first", "last", "reason", "channel"}),
    Channel.CMD: frozenset({"v", "id", "op", "ts", "expires", "args", "ttl_ms"}),
    Channel.CMD_ACK: frozenset({"v", "seq", "ts", "id", "result", "detail", "data"}),
}


_TELEMETRY: Final = Channel.TELEMETRY  # a module global is read faster than an enum member


def decode(channel: Channel, payload: bytes, *, fast: bool = True) -> Message:
    """Decode a JSON payload received on ``channel``; raise :class:`PayloadError` if it breaks the contract.

    ``fast=False`` uses only the standard library and the reference checks: same results, same errors.
    """
    decoder = (_FAST_DECODERS if fast else _DECODERS).get(channel)
    if decoder is None:
        raise PayloadError("bad_channel", f"{channel} payloads are not JSON messages")
    if channel is _TELEMETRY:
        # A valid message has one "metrics" key per point (or one in all), and that byte sequence
        # cannot occur inside a JSON string (its quotes would be escaped): counting it refuses an
        # oversized batch before paying for parsing it.
        points = payload.count(b'"metrics"')
        if points > MAX_POINTS_PER_MESSAGE:
            raise PayloadError("too_large", f"{points} points exceeds {MAX_POINTS_PER_MESSAGE}")
        if fast and _msgspec_telemetry is not None and len(payload) <= MAX_PAYLOAD_BYTES:
            tel = _telemetry_msgspec(payload)
            if tel is not None:
                return tel
    obj = load_json(payload, fast=fast)
    _extras(obj, _KNOWN_KEYS[channel], 1, "payload")
    try:
        return decoder(obj)
    except TopicError as exc:
        raise PayloadError(exc.reason, exc.detail) from exc
    except (TypeError, AttributeError) as exc:  # a value of a wrong shape where a scalar belongs
        raise PayloadError("schema", str(exc)) from exc


def check_snapshot(payload: bytes) -> str:
    """Check a snapshot payload (JPEG bytes within the cap) and return its SHA-256 hex digest."""
    if len(payload) > MAX_SNAPSHOT_BYTES:
        raise PayloadError("too_large", f"snapshot of {len(payload)} bytes exceeds {MAX_SNAPSHOT_BYTES}")
    if not payload.startswith(b"\xff\xd8"):
        raise PayloadError("not_jpeg", "snapshot payload is not a JPEG image")
    return hashlib.sha256(payload).hexdigest()


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
