"""The msgspec telemetry path: taken for the shapes devices send, and never different from the reference."""

from __future__ import annotations

import pytest

from edge import wire
from edge.wire import Channel, PayloadError
from edge.wire import decoding as wire_decoding
from edge.wire import jsonload as wire_json
from simulators.loadgen import TelemetryTemplate

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
