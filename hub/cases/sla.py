"""Pure SLA arithmetic: limits per category, severity and stage; due times; warning levels; pauses.

A :class:`StageClock` runs on a :class:`~hub.cases.calendar.WorkingCalendar`. Time
spent paused (waiting for the resident) is counted in working time and pushes the
due time back by exactly that much. Levels: ``green`` below 80 % of the limit,
``yellow`` from 80 %, ``red`` once the limit is exceeded.
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


class SlaError(ValueError):
    """An unparsable duration or unknown stage."""


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
    """Limits for a category and severity ('*' matches any); stages missing fall through."""

    category: str
    severity: str
    limits: Mapping[str, timedelta]


class SlaPolicy:
    """Finds the most specific limit for (category, severity, stage)."""

    def __init__(self, rules: Sequence[SlaRule], default: Mapping[str, timedelta]) -> None:
        for stage in default:
            if stage not in STAGES:
                raise SlaError(f"unknown stage {stage!r}")
        self.rules = list(rules)
        self.default = dict(default)

    @classmethod
    def from_strings(cls, calendar: WorkingCalendar, rules: Sequence[Mapping[str, str]] = ()) -> SlaPolicy:
        """Build from dicts like {category, severity, dispatch: '1h', accept: '2h', handle: '2d'}."""
        parsed = [
            SlaRule(
                r.get("category", "*"),
                r.get("severity", "*"),
                {s: parse_duration(r[s], calendar) for s in STAGES if s in r},
            )
            for r in rules
        ]
        return cls(parsed, {s: parse_duration(v, calendar) for s, v in DEFAULT_LIMITS.items()})

    def limit(self, category: str, severity: str, stage: str) -> timedelta:
        """The limit for a stage; exact category beats '*', then exact severity beats '*'."""
        if stage not in STAGES:
            raise SlaError(f"unknown stage {stage!r}")
        best: tuple[int, timedelta] | None = None
        for rule in self.rules:
            if stage not in rule.limits or rule.category not in ("*", category) or rule.severity not in ("*", severity):
                continue
            score = (2 if rule.category == category else 0) + (1 if rule.severity == severity else 0)
            if best is None or score > best[0]:
                best = (score, rule.limits[stage])
        return best[1] if best is not None else self.default[stage]


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
