"""Per-case calendars through the real service and API: a Friday-night fire is due in minutes, not on Monday."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import update

from hub.cases.models import CaseRow
from hub.context import need
from tests.hub.cases.conftest import CasesEnv
from tests.hub.cases.test_api_flow import GRID_1, act, smoke_group

MINUTE = 60.0
HOUR = 3600.0
BEIJING = timezone(timedelta(hours=8))


def local(year: int, month: int, day: int, hour: int, minute: int) -> float:
    """Epoch seconds of a Beijing local time (the example city's zone)."""
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING).timestamp()


FRIDAY_7PM = local(2026, 11, 27, 19, 0)
NATIONAL_DAY_10AM = local(2026, 10, 1, 10, 0)  # a holiday in the example's office calendar
WHEN = pytest.mark.parametrize("when", [FRIDAY_7PM, NATIONAL_DAY_10AM], ids=["friday-19h", "holiday"])


def routine_group(group_id: int = 42) -> dict[str, Any]:
    """An overflowing bin in grid 1: routine work on office hours."""
    return {
        **smoke_group(group_id),
        "category": "environment_sanitation",
        "severity": "minor",
        "title": "bin overflowing",
    }


@WHEN
def test_critical_fire_falls_due_minutes_later_and_escalates_that_night(env: CasesEnv, when: float) -> None:
    env.clock.now = when
    case_id = env.svc.on_incident_group(smoke_group())  # auto-dispatched: accept within 10 minutes
    assert case_id is not None
    case = env.svc.get(case_id)
    assert (case["calendar"], case["stage"]) == ("always", "accept")
    assert case["sla"]["due_ms"] == (when + 10 * MINUTE) * 1000
    env.clock.advance(8.5 * MINUTE)
    assert env.svc.sweep() == []
    assert env.svc.get(case_id)["sla"]["level"] == "yellow"
    env.clock.advance(1.5 * MINUTE + 1)
    [street] = env.svc.sweep()
    assert (street["level_name"], street["due_ms"]) == ("street", (when + 10 * MINUTE) * 1000)
    env.svc.transition(case_id, "accept", "f1")
    case = env.svc.get(case_id)
    assert (case["calendar"], case["stage"], case["breached"]) == ("always", "handle", True)
    assert case["sla"]["due_ms"] == env.svc.now_ms() + 2 * HOUR * 1000  # handle within 2 h, at night too


@pytest.mark.parametrize(
    ("when", "due"),
    [(FRIDAY_7PM, local(2026, 11, 30, 14, 30)), (NATIONAL_DAY_10AM, local(2026, 10, 6, 14, 30))],
    ids=["friday-19h", "holiday"],
)
def test_routine_case_waits_for_office_hours(env: CasesEnv, when: float, due: float) -> None:
    env.clock.now = when
    case_id = env.svc.on_incident_group(routine_group())  # accept within 4 office hours
    assert case_id is not None
    case = env.svc.get(case_id)
    assert (case["calendar"], case["stage"]) == ("office", "accept")
    assert case["sla"]["due_ms"] == due * 1000  # the next working day, 09:00-12:00 and 13:30-14:30
    env.clock.advance(24 * HOUR)  # Saturday 19:00 / the second holiday: no working time has passed
    assert env.svc.sweep() == []
    case = env.svc.get(case_id)
    assert (case["sla"]["level"], case["sla"]["spent_s"], case["sla"]["due_ms"]) == ("green", 0.0, due * 1000)


def test_any_critical_case_runs_around_the_clock_with_24_hour_days(env: CasesEnv) -> None:
    env.clock.now = FRIDAY_7PM
    flood = {**smoke_group(43), "category": "facilities", "title": "water in the basement"}
    case_id = env.svc.on_incident_group(flood)
    assert case_id is not None
    case = env.svc.get(case_id)
    assert (case["calendar"], case["force"]) == ("always", "property")
    assert case["sla"]["due_ms"] == (FRIDAY_7PM + 4 * HOUR) * 1000
    env.clock.advance(HOUR)
    env.svc.transition(case_id, "accept", "w1")
    case = env.svc.get(case_id)
    assert case["sla"]["due_ms"] == (FRIDAY_7PM + HOUR + 3 * 24 * HOUR) * 1000  # 3d = 72 wall-clock hours


def test_public_security_runs_around_the_clock_whatever_its_severity(env: CasesEnv) -> None:
    env.clock.now = FRIDAY_7PM
    fight = {**smoke_group(43), "category": "public_security", "severity": "major", "title": "fight in the courtyard"}
    case_id = env.svc.on_incident_group(fight)
    assert case_id is not None
    case = env.svc.get(case_id)
    assert (case["calendar"], case["force"]) == ("always", "police")
    assert case["sla"]["due_ms"] == (FRIDAY_7PM + HOUR) * 1000  # accept within 1 h, on a Friday night
    env.clock.advance(HOUR / 2)
    env.svc.transition(case_id, "accept", "p1")
    case = env.svc.get(case_id)
    assert case["sla"]["due_ms"] == (FRIDAY_7PM + HOUR / 2 + 8 * HOUR) * 1000


def test_cases_from_before_calendars_run_on_the_default_calendar(env: CasesEnv) -> None:
    env.clock.now = local(2026, 11, 27, 17, 55)  # Friday
    case_id = env.svc.on_incident_group(smoke_group())
    assert case_id is not None
    assert env.svc.get(case_id)["sla"]["due_ms"] == local(2026, 11, 27, 18, 5) * 1000
    with env.svc.sessions() as s, s.begin():
        s.execute(update(CaseRow).where(CaseRow.id == case_id).values(sla_calendar=None))
    case = env.svc.get(case_id)  # a row written before migration 0004 ran on the one office calendar
    assert case["calendar"] == "office"
    assert case["sla"]["due_ms"] == local(2026, 11, 30, 9, 5) * 1000


def test_api_shows_the_calendar_and_a_fire_due_within_its_limit_in_wall_clock_time(live: CasesEnv) -> None:
    live.clock.now = FRIDAY_7PM
    op = live.client("op1")
    new_fire = {"category": "fire_safety", "severity": "critical", "title": "smoke in stairwell", "grid": GRID_1}
    created = op.post("/api/v1/cases", json=new_fire)
    assert created.status_code == 201
    fire = created.json()
    assert (fire["calendar"], fire["stage"], fire["sla"]["limit_s"]) == ("always", "dispatch", 5 * MINUTE)
    assert 0 < fire["sla"]["due_ms"] - fire["created_ms"] <= fire["sla"]["limit_s"] * 1000
    assert fire["sla"]["due_ms"] == (FRIDAY_7PM + 5 * MINUTE) * 1000

    routine = op.post(
        "/api/v1/cases", json={"category": "environment_sanitation", "title": "bin overflowing", "grid": GRID_1}
    )
    assert routine.status_code == 201
    assert routine.json()["calendar"] == "office"
    assert routine.json()["sla"]["due_ms"] == local(2026, 11, 30, 11, 0) * 1000  # dispatch: 2 office hours

    live.clock.advance(2 * MINUTE)
    dispatched = act(op, fire["id"], "dispatch")
    assert dispatched.status_code == 200
    assert (dispatched.json()["calendar"], dispatched.json()["stage"]) == ("always", "accept")
    assert dispatched.json()["sla"]["due_ms"] == (FRIDAY_7PM + 12 * MINUTE) * 1000
    listed = {c["id"]: c["calendar"] for c in op.get("/api/v1/cases").json()}
    assert listed == {fire["id"]: "always", routine.json()["id"]: "office"}
    assert op.get(f"/api/v1/cases/{fire['id']}").json()["calendar"] == "always"

    # Open311 projects each later stage on its own calendar: 19:12 + 2 h handling that night (read by
    # staff: operator-raised cases are not in the public view)
    staff = {"api_key": need(live.ctx.services.tokens, "tokens").issue_token("op1", "test")}
    [request] = live.client().get(f"/open311/v2/requests/{fire['id']}.json", params=staff).json()
    assert request["expected_datetime"] == "2026-11-27T21:12:00+08:00"
    [request] = live.client().get(f"/open311/v2/requests/{routine.json()['id']}.json", params=staff).json()
    assert request["expected_datetime"] == "2026-12-03T16:30:00+08:00"  # Mon 11:00 + 4 h + 3 office days
