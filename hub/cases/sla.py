"""Pure SLA arithmetic: limits per category, severity and stage; due times; warning levels; pauses.

A :class:`StageClock` runs on a :class:`~hub.cases.calendar.WorkingCalendar`. Time
spent paused (waiting for the resident) is counted in working time and pushes the
due time back by exactly that much. Levels: ``green`` below 80 % of the limit,
``yellow`` from 80 %, ``red`` once the limit is exceeded.

Calendars are named: each :class:`SlaRule` names the calendar its limits run on
(none = the policy's default calendar), so a critical fire can run around the clock
while a broken bench waits for office hours. A stage's limit and its calendar come
from the same rule, because a ``2d`` limit means two working days *of that calendar*.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from hub.cases.calendar import ZERO, WorkingCalendar

STAGES: Final[tuple[str, ...]] = ("dispatch", "accept", "handle")
YELLOW_AT: Final = 0.8
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d)\s*$")
DEFAULT_LIMITS: Final[dict[str, str]] = {"dispatch": "1h", "accept": "2h", "handle": "2d"}
#: The name of the default calendar when a config names none (office hours).
DEFAULT_CALENDAR: Final = "office"


class SlaError(ValueError):
    """An unparsable duration or unknown stage."""


class UnknownCalendarError(SlaError):
    """A rule (``rule`` index, None for the policy's default) names a calendar that is not defined."""

    def __init__(self, name: str, known: Sequence[str], rule: int | None = None) -> None:
        super().__init__(f"unknown calendar {name!r}; known calendars: {', '.join(sorted(known)) or '(none)'}")
        self.name = name
        self.known = tuple(sorted(known))
        self.rule = rule


def parse_duration(text: str, calendar: WorkingCalendar) -> timedelta:
    """'30m', '4h' (working hours) or '2d' (working days) → working time."""
    match = _DURATION.match(text)
    if not match:
        raise SlaError(f"duration {text!r} must look like 30m, 4h or 2d")
    amount, unit = float(match.group(1)), match.group(2)
    if unit == "m":
        return timedelta(minutes=amount)
    if unit == "h":
        return timedelta(hours=amount)
    return calendar.day_length * amount


@dataclass(frozen=True, slots=True)
class SlaRule:
    """Limits for a category and severity ('*' matches any); stages missing fall through.

    ``calendar`` names the calendar the limits run on; None means the policy's default.
    """

    category: str
    severity: str
    limits: Mapping[str, timedelta]
    calendar: str | None = None


@dataclass(frozen=True, slots=True)
class StageLimit:
    """A stage's limit and the named calendar it is counted on."""

    limit: timedelta
    calendar_name: str
    calendar: WorkingCalendar


class SlaPolicy:
    """Finds the most specific limit, and the calendar it runs on, for (category, severity, stage)."""

    def __init__(
        self,
        rules: Sequence[SlaRule],
        default: Mapping[str, timedelta],
        *,
        calendars: Mapping[str, WorkingCalendar] | None = None,
        default_calendar: str = DEFAULT_CALENDAR,
    ) -> None:
        for stage in default:
            if stage not in STAGES:
                raise SlaError(f"unknown stage {stage!r}")
        self.calendars = dict(calendars) if calendars is not None else {default_calendar: WorkingCalendar()}
        if default_calendar not in self.calendars:
            raise UnknownCalendarError(default_calendar, list(self.calendars))
        for index, rule in enumerate(rules):
            if rule.calendar is not None and rule.calendar not in self.calendars:
                raise UnknownCalendarError(rule.calendar, list(self.calendars), index)
        self.default_calendar = default_calendar
        self.rules = list(rules)
        self.default = dict(default)

    @classmethod
    def from_strings(
        cls,
        calendars: WorkingCalendar | Mapping[str, WorkingCalendar],
        rules: Sequence[Mapping[str, str]] = (),
        *,
        default_calendar: str = DEFAULT_CALENDAR,
    ) -> SlaPolicy:
        """Build from dicts like {category, severity, calendar, dispatch: '1h', accept: '2h', handle: '2d'}.

        ``calendars`` is either the one (default) calendar or every calendar by name.
        """
        named = {default_calendar: calendars} if isinstance(calendars, WorkingCalendar) else dict(calendars)
        if default_calendar not in named:
            raise UnknownCalendarError(default_calendar, list(named))
        parsed = []
        for index, r in enumerate(rules):
            name = r.get("calendar")
            if name is not None and name not in named:
                raise UnknownCalendarError(name, list(named), index)
            cal = named[name or default_calendar]
            limits = {s: parse_duration(r[s], cal) for s in STAGES if s in r}
            parsed.append(SlaRule(r.get("category", "*"), r.get("severity", "*"), limits, name))
        default = {s: parse_duration(v, named[default_calendar]) for s, v in DEFAULT_LIMITS.items()}
        return cls(parsed, default, calendars=named, default_calendar=default_calendar)

    def named(self, name: str | None) -> tuple[str, WorkingCalendar]:
        """A calendar by name; the default one for None or a name no longer configured."""
        if name is None or name not in self.calendars:
            name = self.default_calendar
        return name, self.calendars[name]

    def stage_limit(self, category: str, severity: str, stage: str) -> StageLimit:
        """The limit for a stage and its calendar; exact category beats '*', then exact severity beats '*'."""
        if stage not in STAGES:
            raise SlaError(f"unknown stage {stage!r}")
        best: tuple[int, SlaRule] | None = None
        for rule in self.rules:
            if stage not in rule.limits or rule.category not in ("*", category) or rule.severity not in ("*", severity):
                continue
            score = (2 if rule.category == category else 0) + (1 if rule.severity == severity else 0)
            if best is None or score > best[0]:
                best = (score, rule)
        if best is None:
            name, cal = self.named(None)
            return StageLimit(self.default[stage], name, cal)
        name, cal = self.named(best[1].calendar)
        return StageLimit(best[1].limits[stage], name, cal)

    def limit(self, category: str, severity: str, stage: str) -> timedelta:
        """The limit for a stage (see :meth:`stage_limit`)."""
        return self.stage_limit(category, severity, stage).limit


@dataclass(frozen=True, slots=True)
class StageClock:
    """A running stage limit: start, limit, working time paused so far, and an open pause."""

    stage: str
    started: datetime
    limit: timedelta
    paused: timedelta = ZERO
    paused_since: datetime | None = None


def elapsed(cal: WorkingCalendar, clock: StageClock, now: datetime) -> timedelta:
    """Working time counted against the limit up to ``now`` (pauses excluded)."""
    spent = cal.between(clock.started, now) - clock.paused
    if clock.paused_since is not None:
        spent -= cal.between(clock.paused_since, now)
    return max(spent, ZERO)


def due(cal: WorkingCalendar, clock: StageClock, now: datetime | None = None) -> datetime:
    """The due time; while paused, as if the pause ended at ``now``."""
    paused = clock.paused
    if clock.paused_since is not None and now is not None:
        paused += max(cal.between(clock.paused_since, now), ZERO)
    return cal.add(clock.started, clock.limit + paused)


def level(cal: WorkingCalendar, clock: StageClock, now: datetime) -> str:
    """green, yellow (≥ 80 % of the limit used) or red (limit exceeded)."""
    spent = elapsed(cal, clock, now)
    if spent > clock.limit:
        return "red"
    if clock.limit == ZERO or spent >= clock.limit * YELLOW_AT:
        return "yellow" if spent <= clock.limit else "red"
    return "green"


def pause(clock: StageClock, now: datetime) -> StageClock:
    """Stop the clock (idempotent while already paused)."""
    return clock if clock.paused_since is not None else replace(clock, paused_since=now)


def resume(cal: WorkingCalendar, clock: StageClock, now: datetime) -> StageClock:
    """Restart the clock; the paused working time pushes the due time back exactly."""
    if clock.paused_since is None:
        return clock
    return replace(clock, paused=clock.paused + max(cal.between(clock.paused_since, now), ZERO), paused_since=None)
