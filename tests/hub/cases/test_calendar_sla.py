"""Property tests of the working calendar and SLA arithmetic across weekends and holidays."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.cases.calendar import CalendarError, WorkingCalendar
from hub.cases.sla import SlaPolicy, StageClock, due, elapsed, level, parse_duration, pause, resume

CAL = WorkingCalendar(
    holidays=frozenset({date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 5), date(2026, 12, 25)}),
    makeup_days=frozenset({date(2026, 10, 10)}),
)
instants = st.datetimes(min_value=datetime(2026, 9, 20), max_value=datetime(2026, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
durations = st.integers(min_value=0, max_value=60 * 60 * 8 * 15).map(lambda s: timedelta(seconds=s))
FAST = settings(max_examples=60, deadline=None)


def test_friday_afternoon_rolls_over_the_weekend() -> None:
    start = datetime(2026, 11, 20, 17, 0)  # Friday
    assert CAL.add(start, timedelta(hours=2)) == datetime(2026, 11, 23, 10, 0)  # Monday


def test_national_day_holidays_and_makeup_saturday() -> None:
    start = datetime(2026, 9, 30, 17, 30)  # Wednesday before the holiday
    # Oct 1-2 holidays, 3-4 weekend, 5 holiday → next working time is Oct 6 09:00
    assert CAL.add(start, timedelta(hours=1)) == datetime(2026, 10, 6, 9, 30)
    assert CAL.is_working_day(date(2026, 10, 10))  # make-up Saturday
    assert not CAL.is_working_day(date(2026, 10, 11))


def test_lunch_break_is_skipped_and_period_end_is_inside() -> None:
    assert CAL.add(datetime(2026, 11, 23, 11, 0), timedelta(hours=1)) == datetime(2026, 11, 23, 12, 0)
    assert CAL.add(datetime(2026, 11, 23, 11, 0), timedelta(hours=2)) == datetime(2026, 11, 23, 14, 30)
    assert CAL.is_working_time(datetime(2026, 11, 23, 12, 0))
    assert not CAL.is_working_time(datetime(2026, 11, 23, 12, 1))


def test_bad_calendars_are_refused() -> None:
    with pytest.raises(CalendarError):
        WorkingCalendar(periods=((timedelta(hours=10), timedelta(hours=9)),))
    with pytest.raises(CalendarError):
        WorkingCalendar(weekend=frozenset(range(7)))
    with pytest.raises(CalendarError):
        CAL.add(datetime(2026, 1, 1), timedelta(hours=-1))


@FAST
@given(instants, durations, durations)
def test_add_is_additive_and_monotonic(start: datetime, a: timedelta, b: timedelta) -> None:
    assert CAL.add(CAL.add(start, a), b) == CAL.add(start, a + b)
    assert CAL.add(start, a) <= CAL.add(start, a + b)


@FAST
@given(instants, durations)
def test_due_is_working_time_and_between_inverts_add(start: datetime, d: timedelta) -> None:
    end = CAL.add(start, d)
    assert CAL.is_working_time(end)
    assert end >= start
    assert CAL.between(start, end) == d


@FAST
@given(instants, instants)
def test_between_is_antisymmetric_and_bounded(a: datetime, b: datetime) -> None:
    assert CAL.between(a, b) == -CAL.between(b, a)
    assert abs(CAL.between(a, b)) <= abs(b - a)


@FAST
@given(instants, durations, instants, st.integers(min_value=0, max_value=60 * 60 * 40))
def test_pause_shifts_due_exactly(start: datetime, limit: timedelta, pause_at: datetime, pause_s: int) -> None:
    clock = StageClock("handle", start, limit)
    before = due(CAL, clock)
    pause_at = max(pause_at, start)
    resume_at = pause_at + timedelta(seconds=pause_s)
    after = resume(CAL, pause(clock, pause_at), resume_at)
    assert due(CAL, after) == CAL.add(before, CAL.between(pause_at, resume_at))
    # time spent paused never counts against the limit
    assert elapsed(CAL, after, resume_at) == CAL.between(start, pause_at)


@FAST
@given(instants, st.integers(min_value=60, max_value=60 * 60 * 30).map(lambda s: timedelta(seconds=s)))
def test_levels_follow_the_due_time(start: datetime, limit: timedelta) -> None:
    clock = StageClock("accept", start, limit)
    assert level(CAL, clock, start) == "green"
    assert level(CAL, clock, CAL.add(start, limit * 0.8)) == "yellow"
    assert level(CAL, clock, due(CAL, clock)) == "yellow"
    assert level(CAL, clock, CAL.add(start, limit + timedelta(seconds=1))) == "red"


def test_policy_picks_most_specific_rule() -> None:
    policy = SlaPolicy.from_strings(
        CAL,
        [
            {"category": "fire_safety", "handle": "4h"},
            {"category": "fire_safety", "severity": "critical", "handle": "2h"},
            {"category": "*", "severity": "critical", "handle": "1d"},
        ],
    )
    assert policy.limit("fire_safety", "critical", "handle") == timedelta(hours=2)
    assert policy.limit("fire_safety", "minor", "handle") == timedelta(hours=4)
    assert policy.limit("noise", "critical", "handle") == CAL.day_length
    assert policy.limit("noise", "minor", "dispatch") == timedelta(hours=1)  # built-in default
    assert parse_duration("2d", CAL) == timedelta(hours=15)
