"""Pure evaluation metrics and period parsing."""

from __future__ import annotations

import pytest

from hub.cases.calendar import WorkingCalendar
from hub.cases.errors import InvalidInputError
from hub.cases.evaluation import CaseStat, evaluate, percentile, period_bounds

H = 3_600_000


def stat(
    grid: str,
    state: str,
    *,
    accepted: int | None,
    closed: int | None,
    breached: bool = False,
    rework: int = 0,
    score: int | None = None,
    worker: str = "w1",
) -> CaseStat:
    return CaseStat(grid, worker, "fire", state, 0, accepted, closed, breached, rework, score)


def test_rates_times_and_satisfaction_per_grid() -> None:
    stats = [
        stat("g1", "evaluated", accepted=1 * H, closed=5 * H, score=5),
        stat("g1", "closed", accepted=2 * H, closed=4 * H, breached=True, rework=1),
        stat("g1", "handling", accepted=3 * H, closed=None),
        stat("g1", "cancelled", accepted=None, closed=None),
        stat("g2", "dispatched", accepted=None, closed=None, worker="w2"),
    ]
    g1, g2 = evaluate(stats, "grid")
    assert g1["key"] == "g1" and g1["cases"] == 3 and g1["closed"] == 2
    assert g1["closure_rate"] == pytest.approx(2 / 3)
    assert (g1["on_time_rate"], g1["rework_rate"], g1["satisfaction"], g1["evaluated"]) == (0.5, 0.5, 5.0, 1)
    assert (g1["response_s_median"], g1["response_s_p90"]) == (7200.0, 10800.0)
    assert (g1["handling_s_median"], g1["handling_s_p90"]) == (3 * 3600.0, 4 * 3600.0)
    assert (g2["cases"], g2["closure_rate"], g2["on_time_rate"], g2["response_s_median"]) == (1, 0.0, None, None)
    assert [r["key"] for r in evaluate(stats, "worker")] == ["w1", "w2"]
    assert evaluate(stats, "all")[0]["cases"] == 4
    with pytest.raises(InvalidInputError):
        evaluate(stats, "city")


def test_per_level_groups_by_code_prefix() -> None:
    s1, s2 = "330106001001001", "330106002001001"
    stats = [
        stat(s1, "closed", accepted=H, closed=2 * H),
        stat(f"{s1[:12]}002", "handling", accepted=H, closed=None),
        stat(s2, "closed", accepted=H, closed=2 * H),
        stat("", "dispatched", accepted=None, closed=None),  # a report outside every grid
    ]
    assert [(g["key"], g["cases"], g["closure_rate"]) for g in evaluate(stats, "street")] == [
        ("(none)", 1, 0.0), ("330106001", 2, 0.5), ("330106002", 1, 1.0),
    ]  # fmt: skip
    assert [(g["key"], g["cases"]) for g in evaluate(stats, "district")] == [("(none)", 1), ("330106", 4 - 1)]
    assert [g["key"] for g in evaluate(stats, "community")] == ["(none)", "330106001001", "330106002001"]


def test_percentile_and_periods() -> None:
    assert percentile([], 90) is None
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile(list(map(float, range(1, 11))), 90) == 9.0
    cal = WorkingCalendar()
    month = period_bounds("2026-12", cal)
    assert month is not None and month[1] - month[0] == 31 * 24 * H
    week = period_bounds("2026-W48", cal)
    assert week is not None and week[1] - week[0] == 7 * 24 * H
    assert period_bounds(None, cal) is None
    with pytest.raises(InvalidInputError):
        period_bounds("last week", cal)


def test_alarms_that_reached_the_hub_late_are_counted() -> None:
    def device_case(late_s: float | None) -> CaseStat:
        late = None if late_s is None else int(late_s * 1000)
        return CaseStat("g1", "w1", "fire", "dispatched", 0, None, None, False, 0, None, late)

    [row] = evaluate([device_case(0.2), device_case(300), device_case(45), device_case(None)], "all")
    assert row["late_alarms"] == 1  # only the one replayed five minutes after the outage
    assert (row["alarm_lateness_s_median"], row["alarm_lateness_s_max"]) == (45.0, 300.0)
