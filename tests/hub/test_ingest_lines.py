"""Ingest encoding telemetry to line protocol itself (``encode_lines``, used when the store takes lines).

The lines ingest hands the writer must be exactly what the writer would have encoded from the
points, for every message the wire contract accepts; values that are not all finite floats go
on as points so the writer's own rules (ints as floats, bools) still apply.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge import wire
from edge.wire import Channel, DeviceKind, DeviceState, Point, Status, Telemetry
from hub.db import make_engine, session_factory, sqlite_url
from hub.ingest.pipeline import standalone_ingest
from hub.schema import init_schema
from hub.series.base import SeriesPoint
from hub.series.lineproto import LineProtocolError, encode_points, series_prefix

T0 = 1_800_000_000_000
SITE = "site-a"


class Side:
    """One ingest (lines or points) collecting what it submits."""

    def __init__(self, path: Path, encode_lines: bool) -> None:  # path: a new directory for the state DB
        path.mkdir()
        engine = make_engine(sqlite_url(path))
        init_schema(engine)
        self.items: list[SeriesPoint | str] = []
        self.ingest = standalone_ingest(
            session_factory(engine), submit_points=self.items.extend, root="gs", encode_lines=encode_lines
        )

    def take(self) -> list[SeriesPoint | str]:
        items, self.items[:] = list(self.items), []
        return items


def _encoded(items: Sequence[SeriesPoint | str], ints_as_floats: bool) -> tuple[list[str], list[str]]:
    bad: list[str] = []
    lines = encode_points(items, lambda p, exc: bad.append(exc.reason), ints_as_floats=ints_as_floats)
    return lines, bad


metric_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=wire.MIN_INT, max_value=wire.MAX_INT),
    st.booleans(),
)
metrics = st.dictionaries(st.from_regex(wire.METRIC_PATTERN, fullmatch=True), metric_values, min_size=1, max_size=4)
messages = st.lists(metrics, min_size=1, max_size=5)


def test_lines_equal_what_the_writer_would_encode(tmp_path: Path) -> None:
    lines_side, points_side = Side(tmp_path / "a", True), Side(tmp_path / "b", False)
    devices = itertools.count()

    @settings(max_examples=150, deadline=None)
    @given(messages, st.booleans())
    def check(batch: list[dict[str, wire.MetricValue]], born: bool) -> None:
        device = f"dev-{next(devices)}"
        topic = wire.topic(SITE, device, Channel.TELEMETRY)
        payload = wire.encode(Telemetry(1, T0 + 10, tuple(Point(T0 + i, m) for i, m in enumerate(batch))))
        for side in (lines_side, points_side):
            if born:  # a known kind and grid: measurement "camera" and a grid tag
                status = Status(DeviceState.ONLINE, 1, T0, kind=DeviceKind.CAMERA, grid="110101001001001")
                assert side.ingest.handle(wire.topic(SITE, device, Channel.STATUS), wire.encode(status), T0)
            assert side.ingest.handle(topic, payload, T0 + 20)
        ours, reference = lines_side.take(), points_side.take()
        assert all(isinstance(item, SeriesPoint) for item in reference)
        assert len(ours) == len(reference) == len(batch)
        for item, m in zip(ours, batch, strict=True):  # the lines path is taken exactly for all-float points
            assert isinstance(item, str) == all(type(v) is float for v in m.values())
        for ints_as_floats in (True, False):
            assert _encoded(ours, ints_as_floats) == _encoded(reference, ints_as_floats)

    check()


def test_all_float_telemetry_becomes_lines(tmp_path: Path) -> None:
    side = Side(tmp_path / "s", True)
    payload = wire.encode(Telemetry(7, T0, (Point(T0 - 1, {"temp": 21.5, "rh": 40.0}), Point(T0, {"temp": 21.25}))))
    assert side.ingest.handle(wire.topic(SITE, "env-1", Channel.TELEMETRY), payload, T0)
    assert side.take() == [
        f"unknown,device=env-1,site={SITE} temp=21.5,rh=40.0 {T0 - 1}",
        f"unknown,device=env-1,site={SITE} temp=21.25 {T0}",
    ]
    assert side.ingest.registry.devices["env-1"].latest == {"temp": 21.25, "rh": 40.0}


def test_a_series_key_that_cannot_be_encoded_goes_to_the_writer_as_points(tmp_path: Path) -> None:
    side = Side(tmp_path / "s", True)
    bad = ("camera", {"site": "a\nb", "device": "d"})
    assert side.ingest._line_prefix("d", bad) is None  # the writer encodes the points and dead-letters them
    try:
        series_prefix(*bad)
    except LineProtocolError as exc:
        assert exc.reason == "bad_char"
    else:
        raise AssertionError("a newline in a tag value must be refused")
    good = ("camera", {"site": "a b", "device": "d"})
    assert side.ingest._line_prefix("d", good) == series_prefix(*good) == r"camera,device=d,site=a\ b"
    assert side.ingest._line_prefix("d", good) is side.ingest._line_prefix("d", good)  # cached per key object
