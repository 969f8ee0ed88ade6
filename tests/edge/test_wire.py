"""The wire contract: golden payloads, round-trips, topic safety and clear rejections."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import wire
from edge.wire import (
    AckResult,
    Channel,
    Command,
    CommandAck,
    DeviceKind,
    DeviceState,
    Event,
    EventState,
    GapNotice,
    PayloadError,
    Point,
    Severity,
    SnapshotRef,
    Status,
    Telemetry,
    TopicError,
)

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_CHANNELS = {
    "status": Channel.STATUS,
    "telemetry": Channel.TELEMETRY,
    "event": Channel.EVENT,
    "gap": Channel.GAP,
    "cmd": Channel.CMD,
    "cmd_ack": Channel.CMD_ACK,
}


def golden_channel(path: Path) -> Channel:
    name = path.stem
    return GOLDEN_CHANNELS["cmd_ack" if name.startswith("cmd_ack") else name.split("_")[0]]


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.json")), ids=lambda p: p.stem)
def test_golden_payload_decodes_and_reencodes_byte_for_byte(path: Path) -> None:
    raw = path.read_bytes()
    msg = wire.decode(golden_channel(path), raw)
    assert wire.encode(msg) == raw
    assert wire.channel_of(msg) is golden_channel(path)


def test_golden_files_cover_every_json_channel() -> None:
    covered = {golden_channel(p) for p in GOLDEN.glob("*.json")}
    assert covered == set(Channel) - {Channel.SNAPSHOT}


def test_golden_batch_keeps_point_timestamps_and_hist_flag() -> None:
    msg = wire.decode(Channel.TELEMETRY, (GOLDEN / "telemetry_batch.json").read_bytes())
    assert isinstance(msg, Telemetry)
    assert msg.hist is True
    assert [p.ts for p in msg.points] == [1763900000000, 1763900005000]


# ------------------------------------------------------------------------- topics


def test_topic_builds_and_parses() -> None:
    name = wire.topic("sunrise", "cam-01", Channel.SNAPSHOT, event_id="evt-1")
    assert name == "gs/v1/sunrise/cam-01/snapshot/evt-1"
    parsed = wire.parse_topic(name)
    assert (parsed.site, parsed.device_id, parsed.channel, parsed.event_id) == (
        "sunrise",
        "cam-01",
        Channel.SNAPSHOT,
        "evt-1",
    )
    assert wire.parse_topic("gs/v1/a/b/cmd/ack").channel is Channel.CMD_ACK


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("gs/v1/site/dev", "bad_topic"),
        ("gs/v2/site/dev/telemetry", "unknown_version"),
        ("xx/v1/site/dev/telemetry", "bad_topic"),
        ("gs/v1/site/dev/telemetryx", "bad_channel"),
        ("gs/v1/Site/dev/telemetry", "bad_id"),
        ("gs/v1/site/d+v/telemetry", "bad_id"),
        ("gs/v1/site/#/telemetry", "bad_id"),
        ("gs/v1/site/de\x00v/telemetry", "bad_id"),
        ("gs/v1/site/" + "d" * 65 + "/telemetry", "bad_id"),
        ("gs/v1/site/dev/snapshot/EVT", "bad_id"),
        ("gs/v1/site/dev/status/extra", "bad_channel"),
    ],
)
def test_bad_topics_are_refused_with_a_reason(name: str, reason: str) -> None:
    with pytest.raises(TopicError) as info:
        wire.parse_topic(name)
    assert info.value.reason == reason


def test_subscription_filters() -> None:
    assert wire.subscription(Channel.TELEMETRY) == "gs/v1/+/+/telemetry"
    assert wire.subscription(Channel.SNAPSHOT, site="s1") == "gs/v1/s1/+/snapshot/+"
    assert wire.subscription(None, device_id="d1") == "gs/v1/+/d1/#"
    assert wire.shared_subscription("hub", "gs/v1/+/+/event") == "$share/hub/gs/v1/+/+/event"
    with pytest.raises(TopicError):
        wire.subscription(Channel.CMD, site="+")


ident = st.from_regex(wire.ID_PATTERN, fullmatch=True)


@given(site=ident, device=ident, channel=st.sampled_from(list(Channel)), event_id=ident)
def test_topic_round_trips(site: str, device: str, channel: Channel, event_id: str) -> None:
    eid = event_id if channel is Channel.SNAPSHOT else None
    name = wire.topic(site, device, channel, event_id=eid)
    assert wire.parse_topic(name) == wire.Topic(site, device, channel, eid)


@given(st.text(alphabet=string.printable + "+#/\x00éA", max_size=80), st.text(max_size=80))
def test_nothing_accepted_can_inject_a_level_or_wildcard(site: str, device: str) -> None:
    try:
        name = wire.topic(site, device, Channel.TELEMETRY)
    except TopicError:
        return
    levels = name.split("/")
    assert len(levels) == 5
    assert not any(c in name for c in "+#\x00")
    assert levels[2:4] == [site, device]


@given(st.text(alphabet="gsv1/+#abc-_\x00", max_size=60))
def test_parser_never_accepts_wildcards_or_empty_levels(name: str) -> None:
    try:
        parsed = wire.parse_topic(name)
    except TopicError:
        return
    assert str(parsed) == name
    assert "+" not in name and "#" not in name and "//" not in name


# ----------------------------------------------------------------------- payloads

ts_ms = st.integers(min_value=wire.MIN_TS_MS, max_value=wire.MAX_TS_MS - 1)
seqs = st.integers(min_value=0, max_value=wire.MAX_SEQ)
metric_names = st.from_regex(wire.METRIC_PATTERN, fullmatch=True)
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=wire.MIN_INT, max_value=wire.MAX_INT),
    st.booleans(),
)
metrics = st.dictionaries(metric_names, numbers, min_size=1, max_size=8)
texts = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=40)
scalars = st.one_of(texts, st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans())


@st.composite
def telemetries(draw: st.DrawFn) -> Telemetry:
    ts = draw(ts_ms)
    if draw(st.booleans()):
        points: tuple[Point, ...] = (Point(ts, draw(metrics)),)
    else:
        points = tuple(Point(draw(ts_ms), draw(metrics)) for _ in range(draw(st.integers(2, 5))))
    return Telemetry(seq=draw(seqs), ts=ts, points=points, hist=draw(st.booleans()))


events = st.builds(
    Event,
    seq=seqs,
    ts=ts_ms,
    event_id=ident,
    type=metric_names,
    state=st.sampled_from(list(EventState)),
    severity=st.sampled_from(list(Severity)),
    hist=st.booleans(),
    message=st.none() | texts,
    value=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    zone=st.none() | texts,
    snapshot=st.none()
    | st.builds(
        SnapshotRef,
        sha256=st.none() | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        size=st.integers(0, wire.MAX_SNAPSHOT_BYTES),
        status=st.sampled_from(["sent", "pixelated", "withheld"]),
        note=st.none() | texts,
    ),
    attrs=st.dictionaries(metric_names, scalars, max_size=4),
)
statuses = st.builds(
    Status,
    state=st.sampled_from(list(DeviceState)),
    epoch=st.integers(0, 2**40),
    ts=ts_ms,
    kind=st.none() | st.sampled_from(list(DeviceKind)),
    grid=st.none() | st.from_regex(wire.GRID_PATTERN, fullmatch=True),
    reason=st.none() | texts,
    agent=st.none() | st.text(alphabet=string.ascii_letters + ".", max_size=10),
    interval_s=st.none() | st.floats(min_value=0.001, max_value=1e6),
    labels=st.dictionaries(metric_names, texts, max_size=3),
)
gaps = st.builds(
    lambda seq, ts, first, span, reason: GapNotice(seq, ts, first, first + span, reason),
    seqs,
    ts_ms,
    st.integers(0, 2**40),
    st.integers(0, 10_000),
    st.sampled_from(["evicted", "disk_full"]),
)
commands = st.builds(
    Command,
    id=ident,
    op=st.sampled_from(["ping", "resend", "set_interval", "get_config"]),
    ts=ts_ms,
    expires=st.none() | ts_ms,
    args=st.dictionaries(metric_names, scalars, max_size=4),
)
acks = st.builds(
    CommandAck,
    seq=seqs,
    ts=ts_ms,
    id=ident,
    result=st.sampled_from(list(AckResult)),
    detail=st.none() | texts,
    data=st.dictionaries(metric_names, scalars, max_size=4),
)


@settings(max_examples=150)
@given(st.one_of(telemetries(), events, statuses, gaps, commands, acks))
def test_encode_decode_round_trips(msg: wire.Message) -> None:
    data = wire.encode(msg)
    assert wire.decode(wire.channel_of(msg), data) == msg


def test_mark_historical_sets_the_flag_only() -> None:
    raw = (GOLDEN / "telemetry_single.json").read_bytes()
    msg = wire.decode(Channel.TELEMETRY, wire.mark_historical(raw))
    assert isinstance(msg, Telemetry) and msg.hist
    assert msg.points == wire.decode(Channel.TELEMETRY, raw).points  # type: ignore[union-attr]


# ---------------------------------------------------------------------- rejections

GOOD = {"v": 1, "seq": 1, "ts": 1763900000000, "metrics": {"t": 1.0}}


def body(**changes: object) -> bytes:
    obj = {**GOOD, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"x" * (wire.MAX_PAYLOAD_BYTES + 1), "too_large"),
        (b"\xff\xfe{}", "bad_utf8"),
        (b'{"v":1,"v":1}', "duplicate_key"),
        (b'{"v":1,"seq":1,"ts":1763900000000,"metrics":{"t":NaN}}', "bad_number"),
        (b'{"v":1,"seq":1,"ts":1763900000000,"metrics":{"t":Infinity}}', "bad_number"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b"[1,2]", "schema"),
        (body(v=2), "unknown_version"),
        (body(v=None), "unknown_version"),
        (body(seq=-1), "out_of_range"),
        (body(seq="1"), "schema"),
        (body(ts=5), "bad_timestamp"),
        (body(ts=99_999_999_999_999), "bad_timestamp"),
        (body(metrics={"t": 2**70}), "bad_number"),
        (body(metrics={"T": 1}), "bad_metric"),
        (body(metrics={"t": "hot"}), "schema"),
        (body(metrics={"t": {"nested": 1}}), "schema"),
        (body(metrics={}), "schema"),
        (body(points=[]), "schema"),
        (body(metrics=None, points=[{"metrics": {"t": 1}}] * (wire.MAX_POINTS_PER_MESSAGE + 1)), "too_large"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_telemetry_is_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        wire.decode(Channel.TELEMETRY, payload)
    assert info.value.reason == reason
    assert str(info.value)


def test_event_attrs_must_be_flat_and_ids_valid() -> None:
    base = json.loads((GOLDEN / "event_active.json").read_bytes())
    with pytest.raises(PayloadError) as info:
        wire.decode(Channel.EVENT, json.dumps({**base, "attrs": {"a": {"b": 1}}}).encode())
    assert info.value.reason == "too_deep"
    with pytest.raises(PayloadError) as info:
        wire.decode(Channel.EVENT, json.dumps({**base, "event_id": "a/b"}).encode())
    assert info.value.reason == "schema"


def test_snapshot_check() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"0" * 100
    assert len(wire.check_snapshot(jpeg)) == 64
    with pytest.raises(PayloadError, match="not_jpeg"):
        wire.check_snapshot(b"GIF89a")
    with pytest.raises(PayloadError, match="too_large"):
        wire.check_snapshot(b"\xff\xd8" + b"0" * wire.MAX_SNAPSHOT_BYTES)


def test_encode_refuses_what_decode_would_refuse() -> None:
    with pytest.raises(PayloadError) as info:
        wire.encode(Telemetry(1, 1763900000000, (Point(1763900000000, {"t": float("nan")}),)))
    assert info.value.reason == "bad_number"


def test_a_full_batch_decodes_and_one_point_more_is_refused_before_parsing() -> None:
    ts = 1_800_000_000_000
    full = [{"ts": ts + i, "metrics": {"t": i}} for i in range(wire.MAX_POINTS_PER_MESSAGE)]
    msg = wire.decode(wire.Channel.TELEMETRY, json.dumps({"v": 1, "seq": 1, "ts": ts, "points": full}).encode())
    assert isinstance(msg, wire.Telemetry) and len(msg.points) == wire.MAX_POINTS_PER_MESSAGE
    # the word inside a string value does not count: its quotes are escaped in JSON
    quoted = json.dumps({"v": 1, "seq": 2, "ts": ts, "points": full, "note": '"metrics"' * 5}).encode()
    assert quoted.count(b'"metrics"') == wire.MAX_POINTS_PER_MESSAGE
    over = [*full, {"ts": ts, "metrics": {"t": 0}}]
    payload = json.dumps({"v": 1, "seq": 3, "ts": ts, "points": over}).encode()
    with pytest.raises(wire.PayloadError) as err:
        wire.decode(wire.Channel.TELEMETRY, payload)
    assert err.value.reason == "too_large"
