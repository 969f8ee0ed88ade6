"""Debounced active/cleared state machines for camera events (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Transition(StrEnum):
    """What an update of a debounced condition did."""

    RAISED = "raised"
    CLEARED = "cleared"


@dataclass(slots=True)
class DebouncedCondition:
    """A condition that must hold ``raise_after_s`` to become active and fail ``clear_after_s`` to clear.

    Flickering input never storms: while inactive, every false reading restarts
    the raise timer; while active, every true reading restarts the clear timer.
    """

    raise_after_s: float
    clear_after_s: float
    active: bool = False
    _since_ms: int | None = None

    def update(self, now_ms: int, condition: bool) -> Transition | None:
        """Feed one observation at ``now_ms``; return the transition it caused, if any."""
        if condition == self.active:
            self._since_ms = None
            return None
        if self._since_ms is None:
            self._since_ms = now_ms
        hold_ms = (self.clear_after_s if self.active else self.raise_after_s) * 1000.0
        if now_ms - self._since_ms < hold_ms:
            return None
        self.active = condition
        self._since_ms = None
        return Transition.RAISED if condition else Transition.CLEARED

    def reset(self) -> None:
        """Forget any pending change (the active state is kept)."""
        self._since_ms = None


@dataclass(frozen=True, slots=True)
class EventKey:
    """Identifies one debounced event: its type and, for zone events, the zone."""

    type: str
    zone: str | None = None


class EventBoard:
    """A set of named debounced conditions; ``update`` returns the transitions of one observation."""

    def __init__(self) -> None:
        self._conditions: dict[EventKey, DebouncedCondition] = {}

    def define(self, key: EventKey, raise_after_s: float, clear_after_s: float) -> None:
        """Declare a condition; redefining keeps its current state."""
        old = self._conditions.get(key)
        cond = DebouncedCondition(raise_after_s, clear_after_s)
        if old is not None:
            cond.active = old.active
        self._conditions[key] = cond

    def update(self, key: EventKey, now_ms: int, condition: bool) -> Transition | None:
        """Feed one observation of ``key``; unknown keys raise ``KeyError``."""
        return self._conditions[key].update(now_ms, condition)

    def is_active(self, key: EventKey) -> bool:
        """Whether ``key`` is currently active."""
        cond = self._conditions.get(key)
        return cond is not None and cond.active

    def active_keys(self) -> list[EventKey]:
        """Every key that is active now."""
        return [k for k, c in self._conditions.items() if c.active]
