"""Turn per-poll alarm conditions into edge-triggered active/cleared :class:`DriverEvent` s.

A driver decides on every poll which conditions hold (paper low, disk full, smoke...)
and hands them to :class:`ConditionTracker`; the tracker emits ``active`` once when a
condition appears and ``cleared`` once when it goes away, so the agent never sees a
repeated alarm for a condition that simply persists. :func:`with_hysteresis` gives
threshold conditions a clearing level so a value wobbling at the limit does not flap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from edge.drivers import DriverEvent
from edge.wire import EventState, Severity


class ConditionTracker:
    """Remembers which alarm conditions are active and reports only the changes."""

    def __init__(self) -> None:
        self._active: dict[str, DriverEvent] = {}

    def is_active(self, key: str) -> bool:
        """True while condition ``key`` is raised."""
        return key in self._active

    @property
    def active(self) -> frozenset[str]:
        """Keys of every raised condition."""
        return frozenset(self._active)

    def update(
        self, current: Mapping[str, DriverEvent], *, keep: frozenset[str] = frozenset()
    ) -> tuple[DriverEvent, ...]:
        """Raise conditions new in ``current``, clear raised ones missing from it (except those in ``keep``)."""
        changes: list[DriverEvent] = []
        for key, event in current.items():
            if key not in self._active:
                raised = replace(event, state=EventState.ACTIVE)
                self._active[key] = raised
                changes.append(raised)
        for key in [k for k in self._active if k not in current and k not in keep]:
            raised = self._active.pop(key)
            changes.append(
                DriverEvent(
                    type=raised.type,
                    state=EventState.CLEARED,
                    severity=raised.severity,
                    message=f"{raised.type} cleared",
                    zone=raised.zone,
                )
            )
        return tuple(changes)


def with_hysteresis(tracker: ConditionTracker, key: str, value: float, *, above: float, clear_below: float) -> bool:
    """True when ``value`` >= ``above``, or while already raised and ``value`` >= ``clear_below``."""
    if value >= above:
        return True
    return tracker.is_active(key) and value >= clear_below


def below_with_hysteresis(
    tracker: ConditionTracker, key: str, value: float, *, below: float, clear_above: float
) -> bool:
    """True when ``value`` <= ``below``, or while already raised and ``value`` <= ``clear_above``."""
    if value <= below:
        return True
    return tracker.is_active(key) and value <= clear_above


def alarm(
    type_: str, severity: Severity, message: str, value: float | None = None, zone: str | None = None
) -> DriverEvent:
    """An active :class:`DriverEvent` for a condition that holds now."""
    return DriverEvent(type=type_, state=EventState.ACTIVE, severity=severity, message=message, value=value, zone=zone)
