"""Property tests of the working calendar and SLA arithmetic across weekends and holidays."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.cases.calendar import CalendarError, WorkingCalendar
from hub.cases.sla import (
    SlaPolicy,
    StageClock,
    UnknownCalendarError,
    due,
    elapsed,
    level,
    parse_duration,
    pause,
    resume,
)

CAL = WorkingCalendar(
    holidays=frozenset({date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 5), date(2026, 12, 25)}),
    makeup_days=frozenset({date(2026, 10, 10)}),
)
ALWAYS = WorkingCalendar.around_the_clock()
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


long_durations = st.integers(min_value=0, max_value=60 * 60 * 24 * 30).map(lambda s: timedelta(seconds=s))


@FAST
@given(instants, long_durations, long_durations)
def test_around_the_clock_is_wall_clock_time_and_add_between_stay_inverse(
    start: datetime, a: timedelta, b: timedelta
) -> None:
    end = ALWAYS.add(start, a)
    assert end == start + a
    assert ALWAYS.is_working_time(end)
    assert ALWAYS.between(start, end) == a
    assert ALWAYS.add(end, b) == ALWAYS.add(start, a + b)
    assert ALWAYS.between(end, start) == -a


@FAST
@given(instants, long_durations, instants, st.integers(min_value=0, max_value=60 * 60 * 72))
def test_around_the_clock_pause_shifts_due_by_the_wall_clock_pause(
    start: datetime, limit: timedelta, pause_at: datetime, pause_s: int
) -> None:
    clock = StageClock("handle", start, limit)
    pause_at = max(pause_at, start)
    resumed = resume(ALWAYS, pause(clock, pause_at), pause_at + timedelta(seconds=pause_s))
    assert due(ALWAYS, resumed) == start + limit + timedelta(seconds=pause_s)


def test_around_the_clock_days_are_24_hours_and_weekends_and_nights_count() -> None:
    assert ALWAYS.day_length == timedelta(hours=24)
    assert parse_duration("2d", ALWAYS) == timedelta(hours=48)
    friday_7pm = datetime(2026, 11, 27, 19, 0)
    assert ALWAYS.add(friday_7pm, timedelta(minutes=10)) == datetime(2026, 11, 27, 19, 10)
    assert ALWAYS.add(friday_7pm, timedelta(hours=6)) == datetime(2026, 11, 28, 1, 0)  # past midnight
    assert ALWAYS.add(datetime(2026, 10, 1, 10, 0), timedelta(hours=1)) == datetime(2026, 10, 1, 11, 0)
    assert ALWAYS.add(datetime(2026, 11, 27, 0, 0), timedelta(0)) == datetime(2026, 11, 27, 0, 0)
    assert ALWAYS.add(datetime(2026, 11, 27, 23, 0), timedelta(hours=1)) == datetime(2026, 11, 28, 0, 0)


def test_policy_returns_the_limit_and_the_calendar_of_the_same_rule() -> None:
    policy = SlaPolicy.from_strings(
        {"office": CAL, "always": ALWAYS},
        [
            {"category": "fire_safety", "calendar": "always", "dispatch": "15m", "handle": "1d"},
            {"category": "*", "severity": "critical", "calendar": "always", "accept": "30m"},
            {"category": "*", "handle": "1d"},
        ],
    )
    fire = policy.stage_limit("fire_safety", "major", "handle")
    assert (fire.limit, fire.calendar_name, fire.calendar) == (timedelta(hours=24), "always", ALWAYS)
    routine = policy.stage_limit("environment_sanitation", "minor", "handle")
    assert (routine.limit, routine.calendar_name, routine.calendar) == (timedelta(hours=7.5), "office", CAL)
    # a stage the fire rule lacks falls through to the next rule, on that rule's calendar
    assert policy.stage_limit("fire_safety", "critical", "accept").calendar_name == "always"
    assert policy.stage_limit("fire_safety", "minor", "accept").calendar_name == "office"  # built-in default
    assert policy.limit("fire_safety", "minor", "accept") == timedelta(hours=2)
    assert policy.named(None) == ("office", CAL)
    assert policy.named("gone") == ("office", CAL)  # a name no longer configured: the default


def test_policy_refuses_an_unknown_calendar_naming_it_and_the_known_ones() -> None:
    with pytest.raises(UnknownCalendarError) as info:
        SlaPolicy.from_strings({"office": CAL, "always": ALWAYS}, [{"handle": "1d"}, {"calendar": "allways"}])
    assert (info.value.name, info.value.known, info.value.rule) == ("allways", ("always", "office"), 1)
    assert "'allways'" in str(info.value) and "always, office" in str(info.value)
    with pytest.raises(UnknownCalendarError):
        SlaPolicy.from_strings({"always": ALWAYS}, [])  # the default calendar (office) is missing
