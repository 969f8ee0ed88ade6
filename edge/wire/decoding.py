"""Decoding: every payload checked field by field against the contract, refusals named by a stable ``reason``."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Final, TypeGuard

from edge.wire.contract import (
    _METRIC_RE,
    ID_PATTERN,
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
    AckResult,
    Channel,
    DeviceKind,
    DeviceState,
    EventState,
    MetricValue,
    PayloadError,
    Severity,
    TopicError,
    is_valid_grid,
    is_valid_id,
)
from edge.wire.jsonload import _UNSET, _extras, _msgspec_telemetry, _nested, load_json
from edge.wire.messages import Command, CommandAck, Event, GapNotice, Message, Point, SnapshotRef, Status, Telemetry


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
_POINT_TS_SLOT: Final = Point.__dict__["ts"]
_POINT_METRICS_SLOT: Final = Point.__dict__["metrics"]
_SET_POINT_TS: Final = _POINT_TS_SLOT.__set__
_SET_POINT_METRICS: Final = _POINT_METRICS_SLOT.__set__
_SET_TELEMETRY_SEQ: Final = Telemetry.__dict__["seq"].__set__
_SET_TELEMETRY_TS: Final = Telemetry.__dict__["ts"].__set__
_SET_TELEMETRY_POINTS: Final = Telemetry.__dict__["points"].__set__
_SET_TELEMETRY_HIST: Final = Telemetry.__dict__["hist"].__set__


_native_build_points: Callable[..., tuple[tuple[Point, ...], int] | None] | None
try:  # the loop of _telemetry_msgspec in one native pass (edge/wire/_points.c)
    from edge.wire._points import build_points as _native_build_points
except ImportError:  # installed without a C compiler: the Python loop does the same
    _native_build_points = None


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
        built = _native_points(raw_points, ts) if _native_build_points is not None else None
        if built is None:  # not built, or a point the native pass leaves to Python (a new name, ...)
            built = _python_points(raw_points, ts)
            if built is None:
                return None
        points, point_members = built
        members += point_members
    if payload.count(b":") != members:
        return None
    return _telemetry_of(seq, ts, points, hist)


def _native_points(raw_points: list[Any], ts: int) -> tuple[tuple[Point, ...], int] | None:
    """:func:`_python_points` in one native pass (edge/wire/_points.c): the same points and member count,
    or None for anything it leaves to the Python loop."""
    assert _native_build_points is not None
    return _native_build_points(
        raw_points,
        ts,
        _KNOWN_METRIC_NAMES,
        _UNSET,
        Point,
        _POINT_TS_SLOT,
        _POINT_METRICS_SLOT,
        MAX_METRICS_PER_POINT,
        MIN_TS_MS,
        MAX_TS_MS,
    )


def _python_points(raw_points: list[Any], ts: int) -> tuple[tuple[Point, ...], int] | None:
    """A batch's points (msgspec's ``RawPoint`` structs; ``ts`` for those without their own) and the
    JSON members they were written with (each metric, ``metrics``, and ``ts`` when the point has its
    own), or None when a point breaks the contract here (metric count, names, timestamp range): the
    reference path then names the refusal."""
    members = 0
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
    return tuple(pts), members


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
