"""point_lines: the native encoder (hub/series/_lines.c) writes exactly what the Python path writes."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.wire import Point
from hub.series import lineproto
from hub.series.lineproto import NATIVE_LINES, float_fields, point_lines
from tests.hub.series.test_lineproto_batch import NAMES, PREFIX, TS, VALUES, per_point
from tests.native import require_c_build

needs_native = pytest.mark.skipif(not NATIVE_LINES, reason="hub.series._lines was not built (no C compiler)")


def test_the_native_encoder_is_built_where_it_can_be() -> None:
    """``pip install`` compiles it wherever a C compiler and Python's headers are: a silent fallback would
    leave the hub at the Python path's cost with nobody noticing."""
    require_c_build()
    assert NATIVE_LINES


@needs_native
@settings(max_examples=400, deadline=None)
@given(st.lists(st.dictionaries(NAMES, VALUES, min_size=1, max_size=6), min_size=1, max_size=12))
def test_native_lines_are_the_per_point_lines_or_none(fields_list: list[dict[str, object]]) -> None:
    expected = per_point(fields_list)  # also notes the names, as ingest's first message does
    points = [Point(TS + i, fields) for i, fields in enumerate(fields_list)]  # type: ignore[arg-type]
    got = point_lines(PREFIX, points)
    if got is None:  # something is not a finite float (the per-point path decides), or a name unusual
        assert None in expected or not all(all(type(v) is float for v in f.values()) for f in fields_list)
    else:
        assert got == expected


@needs_native
@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.decimals(places=4, min_value=-(10**9), max_value=10**9).map(float),
    )
)
def test_every_float_is_written_as_orjson_writes_it(value: float) -> None:
    """Shortest round-trip digits, orjson's exponent style (``0.00001``, ``1e-7``, ``1e+16``): the
    text of the Python path, byte for byte, whichever of the native encoder's two float writers ran."""
    float_fields({"x": 1.0})
    assert point_lines(PREFIX, [Point(TS, {"x": value})]) == [f"{PREFIX} x={orjson.dumps(value).decode()} {TS}"]


@needs_native
def test_native_refuses_what_the_per_point_path_must_decide() -> None:
    float_fields({"m0": 1.0, "m1": 2.0})
    ok = Point(TS, {"m0": 1.0})
    for odd in (1, True, float("nan"), float("-inf"), "x"):
        assert point_lines(PREFIX, [ok, Point(TS, {"m1": odd})]) is None  # type: ignore[dict-item]
    assert point_lines(PREFIX, [ok, Point(TS, {})]) is None
    assert point_lines(PREFIX, [Point(TS, {"never seen": 1.0})]) is None  # a name not checked yet
    assert point_lines(PREFIX, [Point(2**63, {"m0": 1.0})]) is None  # beyond 64 bits
    assert point_lines(PREFIX, []) is None
    assert point_lines(PREFIX, [Point(-(2**63), {"m0": -0.0}), Point(0, {"m1": 5e-324})]) == [
        f"{PREFIX} m0=-0.0 {-(2**63)}",
        f"{PREFIX} m1=5e-324 0",
    ]
    assert point_lines("m,site=城东", [ok]) == ["m,site=城东 m0=1.0 " + str(TS)]  # a UTF-8 prefix


def test_without_the_native_encoder_the_python_path_writes_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    float_fields({"m0": 1.0})
    points = [Point(TS, {"m0": 0.25}), Point(TS + 1, {"m0": 1e-5})]
    native = point_lines(PREFIX, points)
    monkeypatch.setattr(lineproto, "_native_point_lines", None)
    assert point_lines(PREFIX, points) == [f"{PREFIX} m0=0.25 {TS}", f"{PREFIX} m0=0.00001 {TS + 1}"]
    assert native is None or native == point_lines(PREFIX, points)
    assert point_lines(PREFIX, points[:1]) is None  # one point: the per-point path writes it
