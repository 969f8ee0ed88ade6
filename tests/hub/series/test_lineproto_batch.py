"""float_lines: a message's points in one orjson call write exactly what the per-point path writes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.series.lineproto import float_fields, float_lines

PREFIX = "unknown,device=d-00001,site=s"
TS = 1_800_000_000_000
NAMES = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True).filter(
    lambda s: s not in ("time", "_field", "_measurement")
)
VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(
        allow_nan=False, allow_infinity=False
    ),  # floats twice as likely: the all-float batch is the one that matters
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
)


def per_point(fields_list: list[dict[str, object]]) -> list[str | None]:
    out = []
    for i, fields in enumerate(fields_list):
        text = float_fields(fields)  # type: ignore[arg-type]
        out.append(None if text is None else f"{PREFIX} {text} {TS + i}")
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(NAMES, VALUES, min_size=1, max_size=6), min_size=1, max_size=12))
def test_batch_lines_are_the_per_point_lines_or_none(fields_list: list[dict[str, object]]) -> None:
    expected = per_point(fields_list)  # also notes the names, as ingest's first message does
    got = float_lines(PREFIX, fields_list, [TS + i for i in range(len(fields_list))])  # type: ignore[arg-type]
    if got is None:  # something in the batch is not a finite float (the per-point path decides), or a name unusual
        assert None in expected or not all(all(type(v) is float for v in f.values()) for f in fields_list)
    else:
        assert got == expected


def test_batch_refuses_what_is_not_all_finite_floats() -> None:
    per_point([{"m0": 1.0, "m1": 2.0}])  # names noted
    stamps = [TS, TS + 1]
    assert float_lines(PREFIX, [{"m0": 1.0}, {"m1": 2.5}], stamps) == [
        f"{PREFIX} m0=1.0 {TS}",
        f"{PREFIX} m1=2.5 {TS + 1}",
    ]
    for odd in (1, -7, True, False, float("nan"), float("inf"), "x", 10**3):
        assert float_lines(PREFIX, [{"m0": 1.0}, {"m1": odd}], stamps) is None
    assert float_lines(PREFIX, [{"m0": 1.0}, {}], stamps) is None
    big = [{"m0": 1e300, "m1": -0.0}]
    assert float_lines(PREFIX, big, [TS]) == per_point(big) == [f"{PREFIX} m0=1e+300,m1=-0.0 {TS}"]  # type: ignore[arg-type]
