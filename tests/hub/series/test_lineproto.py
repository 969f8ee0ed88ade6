"""Line-protocol encoding: escaping, refusals with reasons, and round-trip properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.series.base import SeriesPoint
from hub.series.lineproto import LineProtocolError, encode_line, encode_point, encode_points, parse_line
from tests.hub.series.lp_parser import parse

TS = 1_700_000_000_123
names = st.text(min_size=0, max_size=12)
safe_names = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\\"), min_size=1, max_size=12
).filter(lambda s: s not in ("time", "_field", "_measurement") and not s.startswith("#"))
values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"), max_size=20).filter(
        lambda s: all((ord(c) >= 32 and ord(c) != 127) or c == "\t" for c in s)
    ),
)


def test_escaping_of_every_part() -> None:
    line = encode_line(
        "my meas,x", {"site": "a b", "k=y": "v,1", "grid": "", "device": "d=1"}, {"f x": 1.5, 'q"': 'say "hi" \\'}, TS
    )
    assert line == ('my\\ meas\\,x,device=d\\=1,k\\=y=v\\,1,site=a\\ b f\\ x=1.5,q"="say \\"hi\\" \\\\" 1700000000123')


def test_value_types() -> None:
    line = encode_line("m", {}, {"b": True, "c": False, "i": -7, "f": 0.1, "big": 1e300, "z": 3.0}, TS)
    assert line == "m b=true,c=false,i=-7i,f=0.1,big=1e+300,z=3.0 1700000000123"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_refused_with_reason(value: float) -> None:
    with pytest.raises(LineProtocolError) as info:
        encode_line("m", {}, {"x": value}, TS)
    assert info.value.reason == "not_finite"


@pytest.mark.parametrize(
    ("measurement", "tags", "fields", "reason"),
    [
        ("", {}, {"x": 1.0}, "empty_name"),
        ("#m", {}, {"x": 1.0}, "bad_char"),
        ("m", {"a\nb": "v"}, {"x": 1.0}, "bad_char"),
        ("m", {"a": "v\\"}, {"x": 1.0}, "bad_char"),
        ("m", {"time": "v"}, {"x": 1.0}, "reserved_key"),
        ("m", {}, {"time": 1.0}, "reserved_key"),
        ("m", {}, {}, "no_fields"),
        ("m", {}, {"x": 2**63}, "int_range"),
        ("m", {}, {"x": "two\nlines"}, "bad_char"),
        ("m", {}, {"x": None}, "bad_type"),
    ],
)
def test_refusals_carry_a_stable_reason(
    measurement: str, tags: dict[str, str], fields: dict[str, object], reason: str
) -> None:
    with pytest.raises(LineProtocolError) as info:
        encode_line(measurement, tags, fields, TS)  # type: ignore[arg-type]
    assert info.value.reason == reason


def test_empty_tag_values_are_omitted() -> None:
    assert encode_line("m", {"grid": "", "device": "d"}, {"x": 1}, TS) == "m,device=d x=1i 1700000000123"


def test_encode_points_reports_bad_points_and_keeps_the_rest() -> None:
    bad: list[tuple[SeriesPoint, str]] = []
    pts = [
        SeriesPoint("m", {"device": "a"}, {"x": 1.0}, TS),
        SeriesPoint("m", {"device": "a"}, {"x": math.nan}, TS + 1),
        SeriesPoint("m", {"device": "a"}, {"x": 3.0}, TS + 2),
    ]
    lines = encode_points(pts, lambda p, exc: bad.append((p, exc.reason)))
    assert lines == ["m,device=a x=1.0 1700000000123", "m,device=a x=3.0 1700000000125"]
    assert bad == [(pts[1], "not_finite")]


@settings(max_examples=150, deadline=None)
@given(
    measurement=names,
    tags=st.dictionaries(names, names, max_size=4),
    fields=st.dictionaries(names, values, min_size=1, max_size=4),
    ts=st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_round_trip_or_refusal_never_injection(
    measurement: str, tags: dict[str, str], fields: dict[str, object], ts: int
) -> None:
    try:
        line = encode_line(measurement, tags, fields, ts)  # type: ignore[arg-type]
    except LineProtocolError:
        return
    assert "\n" not in line and "\r" not in line
    parsed = parse(line)
    assert parsed.measurement == measurement
    assert parsed.tags == {k: v for k, v in tags.items() if v}
    assert parsed.fields == fields
    assert parsed.ts == ts
    # The package's own parser (used to replay spooled lines) agrees with the independent one.
    assert parse_line(line) == (measurement, parsed.tags, fields, ts)


@settings(max_examples=100, deadline=None)
@given(
    measurement=safe_names,
    tags=st.dictionaries(safe_names, safe_names, max_size=4),
    fields=st.dictionaries(safe_names, values, min_size=1, max_size=4),
)
def test_refusals_are_narrow(measurement: str, tags: dict[str, str], fields: dict[str, object]) -> None:
    """Names without backslashes or control characters are always written, never refused."""
    line = encode_point(SeriesPoint(measurement, tags, fields, TS))  # type: ignore[arg-type]
    assert parse(line).fields == fields


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip_exactly(value: float) -> None:
    parsed = parse(encode_line("m", {}, {"x": value}, 0))
    assert parsed.fields["x"] == value and type(parsed.fields["x"]) is float


@settings(max_examples=150, deadline=None)
@given(
    measurement=names,
    fields=st.dictionaries(names, st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=6),
)
def test_all_float_template_path_matches_the_general_path(measurement: str, fields: dict[str, float]) -> None:
    """Points whose values are all finite floats take a cached %-template; it must write what the
    per-field path writes (names with ``%``, ``=``, spaces and commas included) or refuse the same way."""
    padded = {**fields, "__int": 1}  # an int sends the same point down the per-field path
    try:
        fast = encode_line(measurement, {"site": "s"}, fields, TS)
    except LineProtocolError as exc:
        with pytest.raises(LineProtocolError) as slow_exc:
            encode_line(measurement, {"site": "s"}, padded, TS)
        assert slow_exc.value.reason == exc.reason
        return
    slow = encode_line(measurement, {"site": "s"}, padded, TS)
    assert slow.startswith(fast.rsplit(" ", 1)[0] + ",__int=1i ")
    assert parse(fast).fields == fields


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["m", "sensor", "bad,name"]),
            st.integers(0, 2),
            st.dictionaries(names, values, max_size=3),
            st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.just(2**64)),
        ),
        max_size=12,
    )
)
def test_encode_points_writes_what_encode_line_writes(rows: list[tuple[str, int, dict[str, object], int]]) -> None:
    """The batch encoder's inlined fast path (tags looked up by identity) changes nothing."""
    shared = [{"site": "s", "device": "d1"}, {"site": "s", "device": "d2"}, {"site": "s"}]
    points = [SeriesPoint(m, shared[t], f, ts) for m, t, f, ts in rows]  # type: ignore[arg-type]
    expected: list[str] = []
    refused: list[tuple[SeriesPoint, str]] = []
    for point in points:
        try:
            expected.append(encode_line(*point, ints_as_floats=True))
        except LineProtocolError as exc:
            refused.append((point, exc.reason))
    errors: list[tuple[SeriesPoint, str]] = []
    assert encode_points(points, lambda p, e: errors.append((p, e.reason)), ints_as_floats=True) == expected
    assert errors == refused


@settings(max_examples=150, deadline=None)
@given(
    fields=st.dictionaries(
        st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True).filter(
            lambda s: s not in ("time", "_field", "_measurement")
        ),
        st.floats(allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=8,
    )
)
def test_bulk_float_path_writes_what_the_per_field_path_writes(fields: dict[str, float]) -> None:
    """Plain field names, once known, are written by orjson in one call (float_fields); the text must be
    the per-field path's, character for character, and read back as the same doubles."""
    padded = {**fields, "__int": 1}  # an int sends the point down the per-field path
    first = encode_line("m", {}, fields, TS)  # builds the template, notes the names
    bulk = encode_line("m", {}, fields, TS)  # the names known: the bulk path
    slow = encode_line("m", {}, padded, TS)
    assert bulk == first
    assert slow == bulk.rsplit(" ", 1)[0] + ",__int=1i " + str(TS)
    assert parse(bulk).fields == fields
    assert all(type(v) is float for v in parse(bulk).fields.values())
