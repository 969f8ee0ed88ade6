"""The msgspec telemetry path: taken for the shapes devices send, and never different from the reference."""

from __future__ import annotations

import pytest

from edge import wire
from edge.wire import Channel, PayloadError
from edge.wire import decoding as wire_decoding
from edge.wire import jsonload as wire_json
from simulators.loadgen import TelemetryTemplate
from tests.native import require_c_build

TS = 1_800_000_000_000
pytestmark = pytest.mark.skipif(wire_json._msgspec_telemetry is None, reason="msgspec is not installed")


def outcome(payload: bytes, *, fast: bool) -> tuple[str, ...]:
    try:
        return ("ok", repr(wire.decode(Channel.TELEMETRY, payload, fast=fast)))
    except PayloadError as exc:
        return ("refused", exc.reason, exc.detail)


@pytest.mark.parametrize("points", [1, 2, 10])
def test_the_usual_shapes_take_the_msgspec_path(points: int) -> None:
    payload = TelemetryTemplate(points, 4).payload(7, TS)
    assert wire_decoding._telemetry_msgspec(payload) is not None
    assert outcome(payload, fast=True) == outcome(payload, fast=False)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":1.5,"b":2,"c":true},"hist":true}',
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":-9223372036854775808,"b":9223372036854775807}}',
        b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"metrics":{"a":1.5}},{"ts":1800000000001,"metrics":{"a":-0.0}}]}',
    ],
)
def test_mixed_values_and_optional_keys_are_taken_and_equal(payload: bytes) -> None:
    assert wire_decoding._telemetry_msgspec(payload) is not None
    assert outcome(payload, fast=True) == outcome(payload, fast=False)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":1.0,"a":2.0}}',  # duplicate metric (msgspec keeps the last)
        b'{"v":1,"seq":1,"seq":2,"ts":1800000000000,"metrics":{"a":1.0}}',  # duplicate field
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":1.0,"\\u0061":2.0}}',  # duplicate behind an escape
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":1.0},"x":{"y":1}}',  # unknown key (depth-limited)
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":100000000000000000000}}',  # beyond 64 bits
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":9223372036854775808}}',  # 2**63
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"A":1.0}}',  # metric name
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":1e400}}',  # overflows a double
        b'{"v":2,"seq":1,"ts":1800000000000,"metrics":{"a":1.0}}',  # version
        b'{"v":1.0,"seq":1,"ts":1800000000000,"metrics":{"a":1.0}}',  # 1.0 == 1: the reference accepts it
        b'{"v":1,"seq":true,"ts":1800000000000,"metrics":{"a":1.0}}',  # a bool is no seq
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":1.0},"points":[{"metrics":{"a":1.0}}]}',  # both
        b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"ts":null,"metrics":{"a":1.0}}]}',
        b'{"v":1,"seq":1,"ts":1800000000000,"points":[]}',
        b'{"v":1,"seq":1,"ts":99,"metrics":{"a":1.0}}',  # timestamp range
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":NaN}}',
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":1.0}} ',
        b'{"v":1,"seq":1,"ts":1800000000000,"metrics":{"a":1.0}}x',
    ],
)
def test_anything_in_doubt_goes_down_the_reference_path(payload: bytes) -> None:
    assert wire_decoding._telemetry_msgspec(payload) is None or payload.endswith(b" ")
    assert outcome(payload, fast=True) == outcome(payload, fast=False)


BATCHES = [
    TelemetryTemplate(10, 4).payload(3, TS),
    b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"metrics":{"a":1.5}},{"ts":1800000000001,"metrics":{"a":-0.0}}]}',
    b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"metrics":{"a":1,"b":true}},{"metrics":{"a":2.5}}],"hist":true}',
    b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"metrics":{"a":1.0}},{"ts":99,"metrics":{"a":1.0}}]}',  # ts range
    b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"ts":4102444800000,"metrics":{"a":1.0}}]}',  # the upper bound
    b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"metrics":{"a":1.0,"a":2.0}}]}',  # duplicate metric
    b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"metrics":{"a":1.0}},{"metrics":{}}]}',  # empty metrics
    b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"metrics":{"a":1.0},"ts":1800000000000,"ts":1}]}',  # dup ts
    b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"metrics":{"a":1.0,"zz_never_seen":2.0}}]}',  # a new name
    b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"metrics":{"Bad":1.0}}]}',  # a name the contract refuses
    b'{"v":1,"seq":1,"ts":1800000000000,"points":[{"metrics":{'
    + b",".join(b'"m%d":1.0' % i for i in range(wire.MAX_METRICS_PER_POINT + 1))
    + b"}}]}",  # one metric too many
]


@pytest.mark.parametrize("payload", BATCHES)
def test_the_native_point_builder_decides_as_the_python_loop(payload: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """edge/wire/_points.c checks, counts and builds what the loop of _telemetry_msgspec does: the same
    message or the same refusal, whether the native builder ran or not (and the reference agrees)."""
    native = outcome(payload, fast=True)
    monkeypatch.setattr(wire_decoding, "_native_build_points", None)
    assert outcome(payload, fast=True) == native == outcome(payload, fast=False)


def test_the_native_point_builder_is_built_where_it_can_be() -> None:
    """``pip install`` compiles it wherever a C compiler and Python's headers are."""
    require_c_build()
    assert wire_decoding._native_build_points is not None
    payload = TelemetryTemplate(10, 4).payload(3, TS)
    wire.decode(Channel.TELEMETRY, payload)  # names learnt
    raw = wire_json._msgspec_telemetry.decode(payload)
    built = wire_decoding._native_build_points(
        raw.points,
        TS,
        wire_decoding._KNOWN_METRIC_NAMES,
        wire_json._UNSET,
        wire.Point,
        wire_decoding._POINT_TS_SLOT,
        wire_decoding._POINT_METRICS_SLOT,
        wire.MAX_METRICS_PER_POINT,
        wire.MIN_TS_MS,
        wire.MAX_TS_MS,
    )
    assert built is not None and built[0] == wire.decode(Channel.TELEMETRY, payload).points  # type: ignore[union-attr]
