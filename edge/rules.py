"""Local threshold rules: pure evaluation of readings into active/cleared transitions.

A rule watches one metric. It raises when the value stays beyond its threshold
for ``for_s`` seconds and clears when the value stays on the other side of the
clear threshold (hysteresis) for ``clear_for_s`` seconds. No I/O and no clock:
the caller passes device time, so rules keep firing while the network is down
and tests can drive them with any sequence of readings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edge.wire import EventState, MetricValue, Severity


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Raise ``type`` when ``metric`` is above ``above`` (or below ``below``), with hysteresis."""

    metric: str
    type: str
    above: float | None = None
    below: float | None = None
    for_s: float = 0.0
    clear_below: float | None = None
    clear_above: float | None = None
    clear_for_s: float = 0.0
    severity: Severity = Severity.MINOR
    message: str | None = None

    def __post_init__(self) -> None:
        if (self.above is None) == (self.below is None):
            raise ValueError(f"rule {self.type}: give exactly one of above or below")

    def breached(self, value: float) -> bool:
        """True when ``value`` is beyond the raise threshold."""
        if self.above is not None:
            return value > self.above
        assert self.below is not None
        return value < self.below

    def recovered(self, value: float) -> bool:
        """True when ``value`` is back on the clear side of the hysteresis band."""
        if self.above is not None:
            limit = self.above if self.clear_below is None else self.clear_below
            return value <= limit if self.clear_below is None else value < limit
        assert self.below is not None
        limit = self.below if self.clear_above is None else self.clear_above
        return value >= limit if self.clear_above is None else value > limit


@dataclass(frozen=True, slots=True)
class RuleTransition:
    """A rule changed state at device time ``ts`` (ms); ``event_id`` pairs active with cleared."""

    rule: ThresholdRule
    state: EventState
    ts: int
    value: float
    event_id: str


@dataclass(slots=True)
class _RuleState:
    active: bool = False
    since: int | None = None  # when the pending raise/clear condition started
    event_id: str = ""


class RuleEngine:
    """Holds the state of a set of rules; :meth:`evaluate` is called on every poll."""

    def __init__(self, rules: Sequence[ThresholdRule]) -> None:
        self.rules = tuple(rules)
        self._state = [_RuleState() for _ in self.rules]

    def active(self) -> list[ThresholdRule]:
        """Rules currently raised."""
        return [rule for rule, state in zip(self.rules, self._state, strict=True) if state.active]

    def evaluate(self, metrics: Mapping[str, MetricValue], now_ms: int) -> list[RuleTransition]:
        """Feed one set of readings taken at ``now_ms``; return the transitions it caused."""
        out: list[RuleTransition] = []
        for index, (rule, state) in enumerate(zip(self.rules, self._state, strict=True)):
            raw = metrics.get(rule.metric)
            if raw is None:
                continue  # a missing reading neither raises nor clears
            value = float(raw)
            if not state.active:
                if not rule.breached(value):
                    state.since = None
                    continue
                if state.since is None:
                    state.since = now_ms
                if now_ms - state.since >= rule.for_s * 1000:
                    state.active, state.since = True, None
                    state.event_id = f"{rule.type[:40]}-{index}-{now_ms:x}"
                    out.append(RuleTransition(rule, EventState.ACTIVE, now_ms, value, state.event_id))
            else:
                if not rule.recovered(value):
                    state.since = None
                    continue
                if state.since is None:
                    state.since = now_ms
                if now_ms - state.since >= rule.clear_for_s * 1000:
                    state.active, state.since = False, None
                    out.append(RuleTransition(rule, EventState.CLEARED, now_ms, value, state.event_id))
        return out
