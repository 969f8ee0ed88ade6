"""InfluxDB line protocol, built directly (no client Point objects): pure functions, no I/O.

Escaping follows the InfluxDB reference: measurement escapes ``,`` and space;
tag keys, tag values and field keys escape ``,``, ``=`` and space; string field
values escape ``\\`` and ``"``. Some inputs cannot be written unambiguously by
every InfluxDB version (a backslash next to an escaped character, a newline, a
control character, a measurement starting with ``#`` that 1.x reads as a
comment); those are refused with a :class:`LineProtocolError` carrying a stable
``reason`` instead of being written wrong. Empty tag values are omitted (InfluxDB
refuses them). Timestamps are integer milliseconds (``precision=ms``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Final, Protocol, TypeAlias

from hub.series.base import SeriesPoint

_orjson_dumps: Callable[[object], bytes] | None
try:  # a faster float writer for the common all-float fields (see float_fields)
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - orjson is a hub dependency; the module works without it
    _orjson_dumps = None

_native_point_lines: Callable[[str, Sequence[object], set[str]], list[str] | None] | None
try:  # the same lines in one native pass (hub/series/_lines.c; see point_lines)
    from hub.series._lines import point_lines as _native_point_lines
except ImportError:  # installed without a C compiler: the Python path writes the same text
    _native_point_lines = None

#: A field value that line protocol can carry.
FieldValue: TypeAlias = "bool | int | float | str"

MIN_INT: Final = -(2**63)
MAX_INT: Final = 2**63 - 1
#: InfluxDB caps string field values at 64 KiB.
MAX_STRING_BYTES: Final = 65_535
#: Keys InfluxDB reserves or silently drops.
RESERVED_KEYS: Final = frozenset({"time", "_field", "_measurement"})

# Characters no key, tag value or measurement may contain: control characters
# (newlines would start a new line) and backslash (InfluxDB does not unescape
# "\\", so "a\" followed by an escaped separator would be read differently).
_FORBIDDEN: Final = re.compile(r"[\x00-\x1f\x7f\\]")
_STRING_FORBIDDEN: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MEASUREMENT_TABLE: Final = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_TABLE: Final = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_TABLE: Final = str.maketrans({"\\": "\\\\", '"': '\\"'})


class LineProtocolError(ValueError):
    """A point cannot be written as line protocol; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def _check(value: str, what: str) -> None:
    if not value:
        raise LineProtocolError("empty_name", f"{what} is empty")
    if _FORBIDDEN.search(value) is not None:
        raise LineProtocolError("bad_char", f"{what} {value!r} contains a backslash or control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LineProtocolError("bad_char", f"{what} {value!r} is not valid UTF-8") from None


@lru_cache(maxsize=4096)
def escape_measurement(name: str) -> str:
    """Escape a measurement name (``,`` and space)."""
    _check(name, "measurement")
    if name.startswith("#"):
        raise LineProtocolError("bad_char", f"measurement {name!r} starts with '#' (a comment in line protocol)")
    return name.translate(_MEASUREMENT_TABLE)


@lru_cache(maxsize=65536)
def escape_key(value: str, what: str = "key") -> str:
    """Escape a tag key, tag value or field key (``,``, ``=`` and space)."""
    _check(value, what)
    return value.translate(_KEY_TABLE)


def _name_key(value: str, what: str) -> str:
    if value in RESERVED_KEYS:
        raise LineProtocolError("reserved_key", f"{what} {value!r} is reserved by InfluxDB")
    return escape_key(value, what)


def format_field_value(name: str, value: FieldValue, ints_as_floats: bool = False) -> str:
    """Render one field value: ``true``/``false``, ``12i`` (or ``12.0``), ``0.5`` (repr) or a quoted string."""
    kind = type(value)
    if ints_as_floats and kind is int and MIN_INT <= value <= MAX_INT:  # type: ignore[operator]
        value = float(value)
        kind = float
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise LineProtocolError("not_finite", f"field {name!r} is {value!r}; InfluxDB stores no NaN or Inf")
        return _float_text(value)  # type: ignore[arg-type]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        if not MIN_INT <= value <= MAX_INT:  # type: ignore[operator]
            raise LineProtocolError("int_range", f"field {name!r}={value!r} does not fit in 64 bits")
        return f"{value}i"
    if kind is str:
        text: str = value  # type: ignore[assignment]
        if _STRING_FORBIDDEN.search(text) is not None:
            raise LineProtocolError("bad_char", f"string field {name!r} contains a newline or control character")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise LineProtocolError("bad_char", f"string field {name!r} is not valid UTF-8") from None
        if size > MAX_STRING_BYTES:
            raise LineProtocolError("too_long", f"string field {name!r} is {size} bytes, over {MAX_STRING_BYTES}")
        return '"' + text.translate(_STRING_TABLE) + '"'
    raise LineProtocolError("bad_type", f"field {name!r} has unsupported type {kind.__name__}")


def _build_prefix(measurement: str, tags: Mapping[str, str]) -> str:
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value:
            parts.append(f",{_name_key(key, 'tag key')}={escape_key(value, 'tag value')}")
    return "".join(parts)


# Hot-path caches (ingest writes the same few thousand series over and over); cleared when they grow.
_PREFIXES: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
_FIELD_KEYS: dict[str, str] = {}
_TEMPLATES: dict[tuple[str, ...], str] = {}
_CACHE_MAX: Final = 100_000
#: Field names orjson and line protocol both write as they are (no escaping in either, no ``:``).
_PLAIN_NAME: Final = re.compile(r"[A-Za-z0-9_]+")
#: Field names seen (in a template built) that match :data:`_PLAIN_NAME` and are not reserved.
_PLAIN_NAMES: Final[set[str]] = set()
_COLON_TO_EQUALS: Final = bytes.maketrans(b":", b"=")


def _field_key(name: str) -> str:
    key = _FIELD_KEYS.get(name)
    if key is None:
        key = _name_key(name, "field key")
        if len(_FIELD_KEYS) >= _CACHE_MAX:
            _FIELD_KEYS.clear()
        _FIELD_KEYS[name] = key
    return key


def _float_text(value: float) -> str:
    """A finite float as line protocol writes it: orjson's shortest round-trip text when orjson is
    installed (what :func:`float_fields` writes in bulk), else ``repr`` -- the same double either way;
    the two differ only in exponent style (``2.5e-7`` / ``2.5e-07``, ``0.00001`` / ``1e-05``)."""
    return _orjson_dumps(value).decode() if _orjson_dumps is not None else repr(value)


def float_fields(fields: Mapping[str, FieldValue]) -> str | None:
    """The field part when every value is a finite float (what devices send); None for anything else
    (the per-field path decides, and writes the same text).

    For a dict whose field names need no escaping in line protocol or JSON (``[A-Za-z0-9_]``, not
    reserved), orjson writes all the values in one call: ``{"m0":0.5,"m1":2.0}`` becomes
    ``m0=0.5,m1=2.0`` by dropping the braces and quotes and turning ``:`` into ``=`` -- about twice as
    fast as ``repr`` per float, and the text :func:`_float_text` writes. Other names use one cached
    %-template per set of names.
    """
    if not fields:
        return None
    for value in fields.values():
        if type(value) is not float or value - value != 0.0:  # not a finite float
            return None
    if type(fields) is dict and fields.keys() <= _PLAIN_NAMES:
        assert _orjson_dumps is not None  # names are only added with orjson
        return _orjson_dumps(fields)[1:-1].translate(_COLON_TO_EQUALS, b'"').decode()
    names = tuple(fields)
    template = _TEMPLATES.get(names)
    if template is None:
        template = ",".join(_field_key(name).replace("%", "%%") + "=%s" for name in names)
        if len(_TEMPLATES) >= _CACHE_MAX:
            _TEMPLATES.clear()
        _TEMPLATES[names] = template
        if _orjson_dumps is not None:  # (_field_key refused reserved names above)
            _note_plain(names)
    return template % tuple(map(_float_text, fields.values()))  # type: ignore[arg-type]


#: Deleted from orjson's text of metric dicts to see what each value is: a finite float leaves ``.`` or
#: ``e`` after its ``:`` (orjson always writes a ``.`` or an exponent), an integer nothing, anything else
#: (``true``, ``null`` for NaN and inf, a string, a container) its first character.
_NUMBER_CHARS: Final = b"0123456789-+"


def float_lines(
    prefix: str, fields_list: Sequence[Mapping[str, FieldValue]], stamps: Sequence[int]
) -> list[str] | None:
    """Lines ``{prefix} {fields} {ts}`` for several points at once, when every value of every point is a
    finite float and every field name is one :func:`float_fields` already wrote as it is (else None: the
    per-point path decides, and writes the same text).

    One orjson call writes all the points' fields (``[{"m0":0.5},{"m0":0.75}]``), three byte counts
    prove they are all floats (plain names hold no ``:``, so every ``:`` starts a value), and one
    translate turns the text into the fields of every line -- instead of a type check per value and an
    orjson call per point.
    """
    if _orjson_dumps is None or not fields_list:
        return None
    plain = _PLAIN_NAMES
    for fields in fields_list:
        if type(fields) is not dict or not fields or not fields.keys() <= plain:
            return None
    text = _orjson_dumps(fields_list)
    shape = text.translate(None, _NUMBER_CHARS)
    if shape.count(b":.") + shape.count(b":e") != shape.count(b":"):
        return None
    parts = text[2:-2].translate(_COLON_TO_EQUALS, b'"').decode().split("},{")
    return [f"{prefix} {part} {ts}" for part, ts in zip(parts, stamps, strict=True)]


class TimedFields(Protocol):
    """A point as ingest holds it (``edge.wire.Point``): a device timestamp in ms and its fields."""

    @property
    def ts(self) -> int: ...

    @property
    def metrics(self) -> Mapping[str, FieldValue]: ...


#: True when the native encoder was built (``pip install`` compiles hub/series/_lines.c where it can).
NATIVE_LINES: Final = _native_point_lines is not None


def point_lines(prefix: str, points: Sequence[TimedFields]) -> list[str] | None:
    """Lines ``{prefix} {fields} {ts}`` for a message's points when every value is a finite float and
    every field name is one :func:`float_fields` already wrote as it is; else None (the per-point
    path decides, and writes the same text).

    With the native encoder (``hub.series._lines``, C) one pass reads the points and writes every
    line, each float as orjson writes it -- the text of :func:`float_lines` and :func:`float_fields`
    (a property test compares them on arbitrary floats). It replaced the Python path's two list
    comprehensions, one orjson call, three byte counts, a translate, a split and an f-string per
    line: 7.3 -> 1.9 CPU-us for a 10-point message of 4 fields, 1.04 -> 0.59 for one point
    (microbenchmark, best of 30). Without it, :func:`float_lines` for several points, None for one.
    """
    if _native_point_lines is not None:
        return _native_point_lines(prefix, points, _PLAIN_NAMES)
    if len(points) > 1:
        return float_lines(prefix, [p.metrics for p in points], [p.ts for p in points])
    return None


def _note_plain(names: tuple[str, ...]) -> None:
    """Remember the names orjson writes as line protocol needs them (see :func:`float_fields`)."""
    plain = [name for name in names if _PLAIN_NAME.fullmatch(name)]
    if len(_PLAIN_NAMES) + len(plain) > _CACHE_MAX:
        _PLAIN_NAMES.clear()
    _PLAIN_NAMES.update(plain)


def series_prefix(measurement: str, tags: Mapping[str, str]) -> str:
    """The escaped ``measurement,tag=value,...`` part of a line (cached); raise :class:`LineProtocolError`."""
    series = (measurement, tuple(tags.items()))
    prefix = _PREFIXES.get(series)
    if prefix is None:
        prefix = _build_prefix(measurement, tags)
        if len(_PREFIXES) >= _CACHE_MAX:
            _PREFIXES.clear()
        _PREFIXES[series] = prefix
    return prefix


def encode_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    ts_ms: int,
    *,
    ints_as_floats: bool = False,
) -> str:
    """One line of line protocol (tags sorted, empty tag values omitted); raise :class:`LineProtocolError`."""
    if type(ts_ms) is not int or not MIN_INT <= ts_ms <= MAX_INT:
        raise LineProtocolError("bad_timestamp", f"timestamp {ts_ms!r} is not a 64-bit integer")
    prefix = series_prefix(measurement, tags)
    text = float_fields(fields)
    if text is not None:
        return f"{prefix} {text} {ts_ms}"
    parts: list[str] = []
    for name, value in fields.items():
        key = _field_key(name)
        # Fast path for finite floats (the common case); everything else goes through the full check.
        if type(value) is float and value - value == 0.0:
            parts.append(f"{key}={_float_text(value)}")
        else:
            parts.append(f"{key}={format_field_value(name, value, ints_as_floats)}")
    if not parts:
        raise LineProtocolError("no_fields", f"point of {measurement!r} has no fields")
    return f"{prefix} {','.join(parts)} {ts_ms}"


def encode_point(point: SeriesPoint) -> str:
    """One :class:`SeriesPoint` as a line of line protocol; raise :class:`LineProtocolError`."""
    return encode_line(point.measurement, point.tags, point.fields, point.ts_ms)


def encode_points(
    points: Iterable[SeriesPoint | str],
    on_error: Callable[[SeriesPoint, LineProtocolError], None],
    *,
    ints_as_floats: bool = False,
) -> list[str]:
    """Encode every point; points that cannot be encoded go to ``on_error`` and are left out.

    A ``str`` item is a line already encoded (ingest encodes telemetry itself when the store
    takes lines) and is passed through as it is. Within one call a series prefix already cached
    is looked up by the tags object's identity (ingest hands the writer one shared tags dict per
    device), saving the tuple of tag items per point; everything else is :func:`encode_line`'s,
    so the output is the same.
    """
    if not isinstance(points, list | tuple) or {*map(type, points)} != _STR_ONLY:
        return _encode_mixed(points, on_error, ints_as_floats)
    return list(points)  # (a backlog's batches are all lines: one C pass instead of a check per line)


_STR_ONLY: Final = {str}


def _encode_mixed(
    points: Iterable[SeriesPoint | str],
    on_error: Callable[[SeriesPoint, LineProtocolError], None],
    ints_as_floats: bool,
) -> list[str]:
    """:func:`encode_points` item by item."""
    lines: list[str] = []
    append = lines.append
    by_tags: dict[tuple[str, int], str] = {}  # (measurement, id(tags)) -> prefix; the points keep tags alive
    for point in points:
        if isinstance(point, str):
            append(point)
            continue
        measurement, tags, fields, ts_ms = point
        prefix = by_tags.get((measurement, id(tags)))
        if prefix is None:
            prefix = _PREFIXES.get((measurement, tuple(tags.items())))
            if prefix is not None:
                by_tags[measurement, id(tags)] = prefix
        try:
            if (
                prefix is not None
                and type(ts_ms) is int
                and MIN_INT <= ts_ms <= MAX_INT
                and (text := float_fields(fields)) is not None
            ):
                append(f"{prefix} {text} {ts_ms}")
            else:
                append(encode_line(measurement, tags, fields, ts_ms, ints_as_floats=ints_as_floats))
        except LineProtocolError as exc:
            on_error(point, exc)
    return lines


def describe_point(point: SeriesPoint) -> str:
    """A readable one-line rendering of a point that could not be encoded (for dead letters)."""
    tags = ",".join(f"{k}={v!r}" for k, v in sorted(point.tags.items()))
    fields = ",".join(f"{k}={v!r}" for k, v in point.fields.items())
    return f"{point.measurement!r},{tags} {fields} {point.ts_ms}"


def _split_unescaped(text: str, sep: str, start: int = 0) -> tuple[str, int]:
    """Scan ``text`` from ``start`` to the first unescaped char in ``sep``; return (raw, index)."""
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            i += 2
            continue
        if ch in sep:
            break
        i += 1
    return text[start:i], i


def _unescape(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in ", =":
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _parse_field_value(text: str, i: int) -> tuple[FieldValue, int]:
    if text.startswith('"', i):
        out: list[str] = []
        i += 1
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
                out.append(text[i + 1])
                i += 2
            elif ch == '"':
                return "".join(out), i + 1
            else:
                out.append(ch)
                i += 1
        raise LineProtocolError("parse", "unterminated string field")
    raw, end = _split_unescaped(text, ", ", i)
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True, end
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False, end
    try:
        if raw.endswith("i"):
            return int(raw[:-1]), end
        number = float(raw)
    except ValueError:
        raise LineProtocolError("parse", f"bad field value {raw!r}") from None
    if not math.isfinite(number):
        raise LineProtocolError("parse", f"non-finite field value {raw!r}")
    return number, end


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, FieldValue], int]:
    """Parse one line written by :func:`encode_line` into (measurement, tags, fields, ts_ms)."""
    raw, i = _split_unescaped(line, ", ")
    measurement = _unescape(raw)
    tags: dict[str, str] = {}
    while i < len(line) and line[i] == ",":
        raw_key, i = _split_unescaped(line, "=, ", i + 1)
        if i >= len(line) or line[i] != "=":
            raise LineProtocolError("parse", f"tag without '=' in {line!r}")
        raw_value, i = _split_unescaped(line, ", ", i + 1)
        tags[_unescape(raw_key)] = _unescape(raw_value)
    if i >= len(line) or line[i] != " ":
        raise LineProtocolError("parse", f"no field set in {line!r}")
    fields: dict[str, FieldValue] = {}
    while True:
        raw_key, i = _split_unescaped(line, "=, ", i + 1)
        if i >= len(line) or line[i] != "=":
            raise LineProtocolError("parse", f"field without '=' in {line!r}")
        fields[_unescape(raw_key)], i = _parse_field_value(line, i + 1)
        if i >= len(line) or line[i] != ",":
            break
    if i >= len(line) or line[i] != " ":
        raise LineProtocolError("parse", f"no timestamp in {line!r}")
    try:
        ts_ms = int(line[i + 1 :])
    except ValueError:
        raise LineProtocolError("parse", f"bad timestamp in {line!r}") from None
    if not measurement or not fields:
        raise LineProtocolError("parse", f"empty measurement or fields in {line!r}")
    return measurement, tags, fields, ts_ms
