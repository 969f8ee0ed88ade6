"""Pure working calendar: working hours, weekends, holidays and make-up working days.

All arithmetic is on naive *local* datetimes with exact ``timedelta`` values. A
working instant is any ``t`` with ``start <= t <= end`` of a working period on a
working day (both ends included, so a due time that lands exactly on 12:00 is
inside working time). :meth:`WorkingCalendar.add` and :meth:`WorkingCalendar.between`
are inverse: ``between(s, add(s, d)) == d`` and ``add(add(s, a), b) == add(s, a + b)``.
An around-the-clock calendar (:meth:`WorkingCalendar.around_the_clock`: one period
00:00-24:00, no weekend, no holidays) is wall-clock time: ``add(s, d) == s + d``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final

ZERO: Final = timedelta(0)
DAY: Final = timedelta(days=1)
#: 09:00-12:00 and 13:30-18:00, the usual service-centre hours.
DEFAULT_PERIODS: Final[tuple[tuple[timedelta, timedelta], ...]] = (
    (timedelta(hours=9), timedelta(hours=12)),
    (timedelta(hours=13, minutes=30), timedelta(hours=18)),
)
#: How many consecutive non-working days the search tolerates before giving up.
MAX_IDLE_DAYS: Final = 400


class CalendarError(ValueError):
    """A calendar that is inconsistent or has no working time at all."""


@dataclass(frozen=True)
class WorkingCalendar:
    """Working periods per day, weekend weekdays (Mon=0), holidays and make-up working days."""

    periods: tuple[tuple[timedelta, timedelta], ...] = DEFAULT_PERIODS
    weekend: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()
    makeup_days: frozenset[date] = frozenset()
    utc_offset: timedelta = timedelta(hours=8)
    _day_length: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        previous_end = ZERO
        for start, end in self.periods:
            if not (previous_end <= start < end <= DAY):
                raise CalendarError(f"periods must be sorted, non-overlapping and within a day: {self.periods}")
            previous_end = end
        if not self.periods:
            raise CalendarError("a calendar needs at least one working period")
        if len(self.weekend) >= 7 and not self.makeup_days:
            raise CalendarError("every weekday is a weekend day")
        object.__setattr__(self, "_day_length", sum((e - s for s, e in self.periods), ZERO))

    @classmethod
    def around_the_clock(cls, utc_offset: timedelta = timedelta(hours=8)) -> WorkingCalendar:
        """Every instant is working time: a working day is 24 h and working time is wall-clock time."""
        return cls(periods=((ZERO, DAY),), weekend=frozenset(), utc_offset=utc_offset)

    @property
    def day_length(self) -> timedelta:
        """Working time in one full working day (the unit of 'working days')."""
        return self._day_length

    def is_working_day(self, day: date) -> bool:
        """Make-up days work, holidays don't, otherwise weekends don't."""
        if day in self.makeup_days:
            return True
        if day in self.holidays:
            return False
        return day.weekday() not in self.weekend

    def is_working_time(self, moment: datetime) -> bool:
        """True when ``moment`` lies inside (or on the edge of) a working period of a working day."""
        if not self.is_working_day(moment.date()):
            return False
        offset = moment - datetime.combine(moment.date(), time())
        return any(start <= offset <= end for start, end in self.periods)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant ``duration`` of working time after ``start`` (always a working instant)."""
        if duration < ZERO:
            raise CalendarError(f"negative duration {duration}")
        remaining = duration
        day = start.date()
        offset = start - datetime.combine(day, time())
        idle = 0
        while True:
            if self.is_working_day(day):
                idle = 0
                midnight = datetime.combine(day, time())
                for p_start, p_end in self.periods:
                    if offset > p_end or (offset == p_end and remaining > ZERO):
                        continue
                    begin = max(offset, p_start)
                    available = p_end - begin
                    if remaining <= available:
                        return midnight + begin + remaining
                    remaining -= available
                    offset = p_end
            else:
                idle += 1
                if idle > MAX_IDLE_DAYS:
                    raise CalendarError(f"no working day within {MAX_IDLE_DAYS} days after {day}")
            day += DAY
            offset = ZERO

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants (negative when ``end`` is before ``start``)."""
        if end < start:
            return -self.between(end, start)
        total = ZERO
        day = start.date()
        while day <= end.date():
            if self.is_working_day(day):
                midnight = datetime.combine(day, time())
                for p_start, p_end in self.periods:
                    lo = max(midnight + p_start, start)
                    hi = min(midnight + p_end, end)
                    if hi > lo:
                        total += hi - lo
            day += DAY
        return total

    def add_working_days(self, start: datetime, days: float) -> datetime:
        """``days`` full working days after ``start`` (a working day = :attr:`day_length`)."""
        return self.add(start, self.day_length * days)

    def to_local(self, ts: float) -> datetime:
        """Epoch seconds → naive local datetime in the calendar's zone."""
        return datetime.fromtimestamp(ts, tz=timezone(self.utc_offset)).replace(tzinfo=None)

    def to_epoch(self, moment: datetime) -> float:
        """Naive local datetime → epoch seconds."""
        return moment.replace(tzinfo=timezone(self.utc_offset)).astimezone(UTC).timestamp()
