"""The orjson decode path gives exactly what the standard-library path gives: same messages, same refusals."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import wire
from edge.wire import Channel, PayloadError
from edge.wire import decoding as wire_decoding
from edge.wire import jsonload as wire_json
from simulators.bench.hostile import HostileCase, hostile_corpus

GOLDEN = Path(__file__).parent / "golden"
JSON_CHANNELS = [c for c in Channel if c is not Channel.SNAPSHOT]
TS = 1_800_000_000_000

Outcome = tuple[str, ...]


def outcome(call: Callable[[], object]) -> Outcome:
    """What a decode did, comparable exactly: repr keeps -0.0 apart from 0.0 and 1 apart from 1.0 or True."""
    try:
        result = call()
    except PayloadError as exc:
        return ("refused", exc.reason, exc.detail)
    return ("ok", type(result).__name__, repr(result))


def same_both_ways(channel: Channel, payload: bytes) -> Outcome:
    fast = outcome(lambda: wire.decode(channel, payload))
    assert fast == outcome(lambda: wire.decode(channel, payload, fast=False))
    assert outcome(lambda: wire.load_json(payload)) == outcome(lambda: wire.load_json(payload, fast=False))
    return fast


# ------------------------------------------------------------------ JSON-ish text generation

WHITESPACE = st.sampled_from(["", "", "", "", " ", "\t", "\n", "\r\n ", "  "])
ESCAPES = st.sampled_from(
    [
        '\\"',
        "\\\\",
        "\\/",
        "\\n",
        "\\u003a",  # an escaped colon: a colon in the value, none in the text
        "\\u0022",
        '\\":',  # a quote then a colon inside a string
        "\\ud83d\\ude00",  # a surrogate pair: fine
        "\\ud800",  # lone surrogates: refused
        "\\uDC00",
        "\\u0000",
    ]
)
STRING_PIECES = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters='"\\'), max_size=6),
    st.sampled_from([":", '":', " :", "{", "}", "[", "]", ",", "社区", "é"]),
    ESCAPES,
)
KEYS = st.sampled_from(["v", "seq", "ts", "metrics", "points", "hist", "state", "epoch", "a", "b", "m0", "x:y"])
NUMBERS = st.one_of(
    st.integers(min_value=-(2**66), max_value=2**66).map(str),
    st.sampled_from([str(2**63 - 1), str(2**63), str(2**64 - 1), str(2**64), str(-(2**63)), str(-(2**63) - 1)]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(
        [
            "-0",
            "-0.0",
            "1e400",
            "-1e400",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "4.9e-324",
            "2.4e-324",
            "0.1000000000000000055511151231257827021181583404541015625",
            "9" * 5000,  # beyond Python's int digit limit
            "NaN",
            "Infinity",
            "-Infinity",
            "01",
            "1.",
            ".5",
        ]
    ),
)


@st.composite
def json_string(draw: st.DrawFn) -> str:
    return '"' + "".join(draw(st.lists(STRING_PIECES, max_size=4))) + '"'


SCALARS = st.one_of(NUMBERS, json_string(), st.sampled_from(["true", "false", "null"]))


@st.composite
def json_array(draw: st.DrawFn, children: st.SearchStrategy[str]) -> str:
    items = draw(st.lists(children, max_size=4))
    return "[" + draw(WHITESPACE) + ",".join(i + draw(WHITESPACE) for i in items) + "]"


@st.composite
def json_object(draw: st.DrawFn, children: st.SearchStrategy[str]) -> str:
    pairs = draw(st.lists(st.tuples(KEYS.map(json.dumps) | json_string(), children), max_size=5))
    if pairs and draw(st.integers(0, 5)) == 0:  # repeat a key, before or after its first use
        key = draw(st.sampled_from(pairs))[0]
        pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(children)))
    members = [draw(WHITESPACE) + k + draw(WHITESPACE) + ":" + draw(WHITESPACE) + v for k, v in pairs]
    return "{" + ",".join(members) + draw(WHITESPACE) + "}"


JSON_VALUES = st.recursive(SCALARS, lambda children: json_array(children) | json_object(children), max_leaves=20)


@st.composite
def render(draw: st.DrawFn, value: Any) -> str:
    """``value`` as JSON text written in any of the ways JSON allows, sometimes with a key repeated."""
    ws = draw(WHITESPACE)
    if isinstance(value, dict):
        pairs = [(render_key(draw, k), draw(render(v))) for k, v in value.items()]
        if pairs and draw(st.integers(0, 9)) == 0:
            key, _ = draw(st.sampled_from(pairs))
            pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(render(draw(st.sampled_from([1, "x", {}]))))))
        return "{" + ",".join(f"{ws}{k}{draw(WHITESPACE)}:{ws}{v}" for k, v in pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(ws + draw(render(v)) for v in value) + "]"
    if isinstance(value, float) and draw(st.booleans()):
        return f"{value:.{draw(st.integers(17, 30))}e}"  # more digits than needed, the same double
    if isinstance(value, str):
        return render_key(draw, value)
    return json.dumps(value)


def render_key(draw: st.DrawFn, text: str) -> str:
    if draw(st.booleans()):
        return json.dumps(text, ensure_ascii=False)
    return json.dumps(text, ensure_ascii=True)  # \uXXXX escapes for everything beyond ASCII


# Mostly valid, sometimes one flaw: a refusal only shows once everything checked before it passed.
ts_ms = st.integers(min_value=wire.MIN_TS_MS, max_value=wire.MAX_TS_MS - 1) | st.sampled_from(
    [wire.MIN_TS_MS - 1, wire.MAX_TS_MS, 5, True]
)
seqs = st.integers(0, wire.MAX_SEQ) | st.sampled_from([-1, wire.MAX_SEQ + 1, 1.0, "1"])
good_metrics = st.dictionaries(
    st.from_regex(wire.METRIC_PATTERN, fullmatch=True),
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(wire.MIN_INT, wire.MAX_INT) | st.booleans(),
    min_size=1,
    max_size=5,
)
odd_metrics: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.sampled_from(["m0", "temp_c", "Bad", "a b", "x" * 70, "é"]),
    st.floats() | st.integers(min_value=-(2**65), max_value=2**65) | st.sampled_from(["x", None, [1], {}]),
    max_size=5,
)
metrics = good_metrics | good_metrics | odd_metrics
points = st.fixed_dictionaries({"metrics": metrics}, optional={"ts": ts_ms}) | st.fixed_dictionaries(
    {"metrics": metrics}, optional={"ts": ts_ms, "extra": st.just([1]), "v": st.just({})}
)
flags = st.booleans() | st.sampled_from([None, 1, 0, "true"])
telemetry_objects = st.fixed_dictionaries(
    {"v": st.just(1), "seq": seqs, "ts": ts_ms, "metrics": metrics}, optional={"hist": flags}
) | st.fixed_dictionaries(
    {"v": st.just(1), "seq": seqs, "ts": ts_ms},
    optional={
        "metrics": metrics,
        "points": st.lists(points, max_size=4),
        "hist": flags,
        "note": st.text(max_size=8),
        "x": st.just({"deep": [[1]]}),
    },
)
FLAWS: dict[str, Callable[[dict[str, Any]], object]] = {
    "none": lambda o: None,
    "seq_negative": lambda o: o.update(seq=-1),
    "seq_bool": lambda o: o.update(seq=True),
    "ts_float": lambda o: o.update(ts=1.8e12),
    "ts_early": lambda o: o.update(ts=wire.MIN_TS_MS - 1),
    "no_ts": lambda o: o.pop("ts"),
    "hist_null": lambda o: o.update(hist=None),
    "metrics_empty": lambda o: o.update(metrics={}),
    "metrics_big_int": lambda o: o.update(metrics={"t": 2**63}),
    "metrics_low_int": lambda o: o.update(metrics={"t": -(2**63) - 1}),
    "metrics_text": lambda o: o.update(metrics={"t": "1"}),
    "metrics_null": lambda o: o.update(metrics={"t": None}),
    "metrics_bad_name": lambda o: o.update(metrics={"t": 1, "T": 1}),
    "metrics_too_many": lambda o: o.update(metrics={f"m{i}": i for i in range(wire.MAX_METRICS_PER_POINT + 1)}),
    "metrics_and_points": lambda o: o.update(metrics={"t": 1}, points=[{"metrics": {"t": 1}}]),
    "points_empty": lambda o: (o.pop("metrics", None), o.update(points=[])),
    "points_object": lambda o: (o.pop("metrics", None), o.update(points={"metrics": {"t": 1}})),
    "point_not_object": lambda o: (o.pop("metrics", None), o.update(points=[{"metrics": {"t": 1}}, 5])),
    "point_ts_bad": lambda o: (o.pop("metrics", None), o.update(points=[{"ts": 5, "metrics": {"t": 1}}])),
    "point_ts_null": lambda o: (o.pop("metrics", None), o.update(points=[{"ts": None, "metrics": {"t": 1}}])),
    "point_extra": lambda o: (o.pop("metrics", None), o.update(points=[{"metrics": {"t": 1}, "q": [1]}])),
    "point_extra_deep": lambda o: (
        o.pop("metrics", None),
        o.update(points=[{"metrics": {"t": 1}, "q": [[[[[[[[1]]]]]]]]}]),
    ),
    "unknown_deep": lambda o: o.update(x=[[[[[[[[[[1]]]]]]]]]]),
    "unknown_long_key": lambda o: o.update({"k" * 65: 1}),
}


@st.composite
def flawed_telemetry(draw: st.DrawFn) -> dict[str, Any]:
    """A valid telemetry object (single point or batch) with at most one thing wrong."""
    obj: dict[str, Any] = {"v": 1, "seq": draw(st.integers(0, wire.MAX_SEQ)), "ts": TS}
    if draw(st.booleans()):
        obj["metrics"] = draw(good_metrics)
    else:
        batch = st.fixed_dictionaries({"metrics": good_metrics}, optional={"ts": st.integers(TS, TS + 10)})
        obj["points"] = draw(st.lists(batch, min_size=1, max_size=3))
    if draw(st.booleans()):
        obj["hist"] = draw(st.booleans())
    FLAWS[draw(st.sampled_from(sorted(FLAWS)))](obj)
    return obj


status_objects = st.fixed_dictionaries(
    {
        "v": st.just(1),
        "state": st.sampled_from(["online", "offline", "dozing"]),
        "epoch": st.integers(-1, 9),
        "ts": ts_ms,
    },
    optional={
        "kind": st.sampled_from(["sensor", "camera", "toaster"]),
        "grid": st.sampled_from(["310104001002003", "31010400100200"]),
        "interval_s": st.floats(allow_nan=False) | st.integers(),
        "labels": st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3),
        "reason": st.text(max_size=8),
    },
)
event_objects = st.fixed_dictionaries(
    {
        "v": st.just(1),
        "seq": st.integers(0, 9),
        "ts": ts_ms,
        "event_id": st.sampled_from(["e1", "E1", "evt-20261123-0001"]),
        "type": st.sampled_from(["smoke", "Smoke", "tamper"]),
        "state": st.sampled_from(["active", "cleared", "maybe"]),
    },
    optional={
        "severity": st.sampled_from(["info", "critical", "dire"]),
        "message": st.text(max_size=12),
        "value": st.floats() | st.integers(min_value=-(2**65), max_value=2**65),
        "attrs": st.dictionaries(st.text(max_size=4), st.floats(allow_nan=False) | st.text(max_size=4), max_size=3),
        "snapshot": st.fixed_dictionaries({"sha256": st.just("9f" * 32), "size": st.integers(0, 9)}),
    },
)
SHAPED = st.one_of(telemetry_objects, flawed_telemetry(), status_objects, event_objects).flatmap(render)


@st.composite
def deep(draw: st.DrawFn) -> str:
    levels = draw(st.sampled_from([9, 11, 64, 200, 253, 254, 255, 256, 1100]))
    nested = "[" * levels + "1" + "]" * levels
    inner = f'{{"v":1,"seq":1,"ts":{TS},"metrics":{{"t":1}},"x":{nested}}}'
    return inner if draw(st.booleans()) else "[" * levels + inner + "]" * levels


def utf8(text: str) -> bytes:
    """Lone surrogates (which hypothesis text may hold) become the invalid UTF-8 a hostile client could send."""
    return text.encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> bytes:
    data = bytearray(utf8(draw(texts)))
    for _ in range(draw(st.integers(0, 2))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["drop", "flip", "insert", "cut"]))
        if action == "drop":
            del data[at]
        elif action == "flip":
            data[at] = draw(st.sampled_from([0x22, 0x3A, 0x5C, 0x7B, 0x7D, 0xFF, 0xC3, 0xED, 0x00]))
        elif action == "insert":
            data[at:at] = draw(st.sampled_from([b":", b'"', b",", b" ", b"\xc3\xa9", b"\xed\xa0\x80"]))
        else:
            del data[at:]
    return bytes(data)


PAYLOADS = st.one_of(
    SHAPED.map(utf8),
    JSON_VALUES.map(lambda text: ('{"v":1,' + text[1:]) if text.startswith("{") else text).map(utf8),
    JSON_VALUES.map(utf8),
    NUMBERS.map(lambda number: f'{{"v":1,"seq":1,"ts":{TS},"metrics":{{"t":{number}}}}}').map(utf8),
    deep().map(utf8),
    mutated(SHAPED | JSON_VALUES),
)


# ------------------------------------------------------------------------------- properties


def provable(value: object) -> bool:
    """True when one of the fast path's proofs must accept the compact JSON of ``value``."""
    if isinstance(value, dict):
        return all(":" not in k and provable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(provable(v) for v in value)
    if isinstance(value, float):
        return abs(value) < 2.0**63  # false for NaN and infinities too
    if isinstance(value, str):
        return ":" not in value and not any("\ud800" <= c <= "\udfff" for c in value)
    return not isinstance(value, int) or -(2**63) <= value < 2**64


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=PAYLOADS, channel=st.sampled_from(JSON_CHANNELS))
def test_fast_and_stdlib_decode_agree(payload: bytes, channel: Channel) -> None:
    same_both_ways(channel, payload)


@settings(max_examples=300, deadline=None)
@given(obj=telemetry_objects | flawed_telemetry() | status_objects | event_objects)
def test_compact_payloads_take_the_fast_path_and_agree(obj: dict[str, Any]) -> None:
    payload = utf8(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
    if provable(obj):
        assert wire_json._fast_object(payload) is not None
    for channel in (Channel.TELEMETRY, Channel.STATUS, Channel.EVENT):
        same_both_ways(channel, payload)


# ------------------------------------------------------------------------------ examples


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.json")), ids=lambda p: p.stem)
def test_golden_payloads_take_the_fast_path(path: Path) -> None:
    raw = path.read_bytes()
    assert wire_json._fast_object(raw) is not None
    assert wire_json._reencodes_to(json.loads(raw), raw)


@pytest.mark.parametrize("case", [c for c in hostile_corpus() if "snapshot" not in c.topic], ids=lambda c: c.name)
def test_hostile_corpus_gets_the_same_refusal_both_ways(case: HostileCase) -> None:
    try:
        channel = wire.parse_topic(case.topic).channel
    except wire.TopicError:
        channel = Channel.TELEMETRY
    result = same_both_ways(channel, case.payload)
    if not case.name.startswith("topic_"):  # a bad topic is refused before its payload is read
        assert result[:2] == ("refused", case.reason)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":1,"seq":1,"seq":2,"ts":1800000000000,"metrics":{"t":1}}',
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"t":1,"t":2}}',
        b'{"v":1,"seq" :1,"seq":1,"ts":1800000000000,"metrics":{"t":1}}',
        b'{"v":1, "seq" : 1 , "ts":1800000000000,"metrics":{"t":1},"seq":1}',
        # a colon in a string could hide one dropped duplicate from a count of '":' alone
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"t":1},"n":"a\\":","n":"b"}',
        b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"ts":1800000000000,"metrics":{"t":1},"ts":1800000000001}]}',
        b'{"v":1,"v":1}',
    ],
)
def test_duplicate_keys_are_refused_on_the_fast_path_too(payload: bytes) -> None:
    assert wire_json._fast_object(payload) is None
    assert same_both_ways(Channel.TELEMETRY, payload)[:2] == ("refused", "duplicate_key")


def test_whitespace_before_colons_still_takes_the_fast_path() -> None:
    payload = b'{ "v" : 1 , "seq" :1, "ts"\n:\t1800000000000, "metrics" : { "t" : 1.5 } }'
    assert wire_json._fast_object(payload) is not None
    assert same_both_ways(Channel.TELEMETRY, payload)[0] == "ok"


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("-0.0", "ok"),
        ("1.7976931348623157e308", "ok"),
        ("0.1000000000000000055511151231257827021181583404541015625", "ok"),
        ("123456789.123456789123456789e-5", "ok"),
        ("9223372036854775807", "ok"),
        ("1e400", "bad_number"),
        ("-1e400", "bad_number"),
        ("9223372036854775808", "bad_number"),
        ("18446744073709551616", "bad_number"),  # orjson alone would read this as a float and accept it
        ("-9223372036854775809", "bad_number"),
        ("NaN", "bad_number"),
        ("9" * 5000, "bad_json"),
    ],
)
def test_numbers_decode_as_the_standard_library_reads_them(number: str, expected: str) -> None:
    payload = b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"t":%s}}' % number.encode()
    result = same_both_ways(Channel.TELEMETRY, payload)
    assert result[0] == expected or result[1] == expected


def test_negative_zero_keeps_its_sign() -> None:
    msg = wire.decode(Channel.TELEMETRY, b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"t":-0.0}}')
    assert isinstance(msg, wire.Telemetry)
    assert math.copysign(1.0, msg.points[0].metrics["t"]) == -1.0


def test_big_integers_in_ignored_keys_stay_integers() -> None:
    payload = b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"t":1},"x":[100000000000000000000]}'
    assert wire_json._fast_object(payload) is None  # orjson read a float there
    assert wire.load_json(payload)["x"] == [10**20]
    assert same_both_ways(Channel.TELEMETRY, payload)[0] == "ok"


@pytest.mark.parametrize("hist", [b"true", b"false", b"null", b"1", b"0", b'"true"'])
@pytest.mark.parametrize(
    "shape", [b'"metrics":{"t":1}', b'"points":[{"metrics":{"t":1}},{"ts":1800000000001,"metrics":{"u":2}}]']
)
def test_hist_must_be_a_boolean_on_both_paths(hist: bytes, shape: bytes) -> None:
    payload = b'{"v":1,"seq":1,"ts":1800000000000,%s,"hist":%s}' % (shape, hist)
    assert same_both_ways(Channel.TELEMETRY, payload)[0] == ("ok" if hist in (b"true", b"false") else "refused")


@pytest.mark.parametrize("levels", [8, 9, 253, 254, 255, 1023, 1100])
def test_nesting_is_refused_the_same_way_at_every_depth(levels: int) -> None:
    payload = b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"t":1},"x":%s}' % (b"[" * levels + b"]" * levels)
    result = same_both_ways(Channel.TELEMETRY, payload)
    assert result[:2] == (("ok", "Telemetry") if levels <= 9 else ("refused", "too_deep"))


def test_lone_surrogates_are_refused_on_the_fast_path_too() -> None:
    payload = b'{"v":1,"seq":1,"ts":1800000000000,"event_id":"e1","type":"smoke","state":"active","message":"\\ud800"}'
    assert same_both_ways(Channel.EVENT, payload)[:2] == ("refused", "bad_unicode")


def test_metric_name_cache_stays_bounded_and_holds_only_valid_names() -> None:
    for i in range(wire_decoding._KNOWN_METRIC_NAMES_MAX + 10):
        assert wire_decoding._metrics_ok({f"m{i}": 1})
    assert not wire_decoding._metrics_ok({"Bad": 1})
    assert 0 < len(wire_decoding._KNOWN_METRIC_NAMES) <= wire_decoding._KNOWN_METRIC_NAMES_MAX
    assert "Bad" not in wire_decoding._KNOWN_METRIC_NAMES


def test_without_orjson_the_standard_path_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = (GOLDEN / "telemetry_batch.json").read_bytes()
    expected = wire.decode(Channel.TELEMETRY, raw)
    monkeypatch.setattr(wire_json, "_orjson_loads", None)
    monkeypatch.setattr(wire_json, "_orjson_dumps", None)
    assert wire.decode(Channel.TELEMETRY, raw) == expected


def test_edge_wire_imports_without_orjson() -> None:
    code = (
        "import sys; sys.modules['orjson'] = None\n"  # makes `import orjson` raise ImportError
        "from edge import wire\n"
        "from edge.wire import jsonload\n"
        "assert jsonload._orjson_loads is None\n"
        "print(wire.decode(wire.Channel.TELEMETRY, open(sys.argv[1], 'rb').read()).seq)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(GOLDEN / "telemetry_single.json")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(json.loads((GOLDEN / "telemetry_single.json").read_bytes())["seq"])


def test_fast_builders_make_the_same_objects_as_the_constructors() -> None:
    # they skip __init__, so they would skip a __post_init__ added later: there must be none
    assert not hasattr(wire.Point, "__post_init__") and not hasattr(wire.Telemetry, "__post_init__")
    assert [f.name for f in dataclasses.fields(wire.Point)] == ["ts", "metrics"]
    assert [f.name for f in dataclasses.fields(wire.Telemetry)] == ["seq", "ts", "points", "hist"]
    point = wire_decoding._point(TS, {"t": 1.5})
    assert point == wire.Point(TS, {"t": 1.5}) and repr(point) == repr(wire.Point(TS, {"t": 1.5}))
    msg = wire_decoding._telemetry_of(7, TS, (point,), True)
    assert msg == wire.Telemetry(7, TS, (wire.Point(TS, {"t": 1.5}),), True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.seq = 8  # type: ignore[misc]
