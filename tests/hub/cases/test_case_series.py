"""Open-case counts as series points: the pure core and the writer against a real case DB."""

from __future__ import annotations

from collections.abc import Sequence

from hub.cases.series import MEASUREMENT, NO_GRID, CaseStatsWriter, case_stats_points
from hub.series.base import SeriesPoint
from tests.hub.cases.conftest import CasesEnv


def by_key(points: Sequence[SeriesPoint]) -> dict[tuple[str, str], dict[str, object]]:
    assert all(p.measurement == MEASUREMENT and p.ts_ms == 1000 for p in points)
    return {(p.tags["grid"], p.tags["state"]): dict(p.fields) for p in points}


def test_counts_per_grid_and_state_with_sla_levels() -> None:
    rows = [
        ("330106001001001", "dispatched", "green", 2),
        ("330106001001001", "dispatched", "red", 1),
        ("330106001001001", "handling", "yellow", 3),
        (None, "reported", "none", 1),
    ]
    points, written = case_stats_points(rows, set(), 1000)
    assert by_key(points) == {
        ("330106001001001", "dispatched"): {"open": 3, "yellow": 0, "red": 1},
        ("330106001001001", "handling"): {"open": 3, "yellow": 3, "red": 0},
        (NO_GRID, "reported"): {"open": 1, "yellow": 0, "red": 0},
    }
    assert written == set(by_key(points))


def test_a_count_that_is_gone_is_written_once_as_zero() -> None:
    previous = {("g1", "dispatched"), ("g1", "handling")}
    points, written = case_stats_points([("g1", "handling", "green", 1)], previous, 1000)
    assert by_key(points) == {
        ("g1", "dispatched"): {"open": 0, "yellow": 0, "red": 0},
        ("g1", "handling"): {"open": 1, "yellow": 0, "red": 0},
    }
    assert written == {("g1", "handling")}
    points, written = case_stats_points([], written, 2000)
    assert [(p.tags["state"], p.fields["open"]) for p in points] == [("handling", 0)]
    assert written == set()
    assert case_stats_points([], written, 3000) == ([], set())


def test_writer_counts_open_cases_in_the_state_db(env: CasesEnv) -> None:
    submitted: list[Sequence[SeriesPoint]] = []
    writer = CaseStatsWriter(env.svc, submitted.append)
    for title in ("blocked drain", "broken lamp"):
        env.svc.create(source="operator", category="facilities", title=title, grid_code="110105001001001")
    assert writer.write() == 1
    (point,) = submitted[-1]
    assert point.tags == {"grid": "110105001001001", "state": "reported"}
    assert point.fields == {"open": 2, "yellow": 0, "red": 0}
    case_id = env.svc.list_cases()[0]["id"]
    env.svc.transition(case_id, "cancel", "op1", {"reason": "duplicate"})
    writer.write()
    assert submitted[-1][0].fields["open"] == 1
