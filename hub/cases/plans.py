"""Emergency plans (应急预案): checklists a matching case carries, from warning to after-action review.

A plan names a category, a severity and optionally the event types it is for (a gas
leak and a fire share the ``fire_safety`` category but not a response). When a case is
created, the most specific matching plan is copied onto it as ``plan_steps``: each step
with its phase, the role or force kind that does it, a due time and, once done, who
did it and when. Steps of the ``recover`` and ``review`` phases must be done before the
case may close (the state machine refuses with the missing steps named).

Step limits count wall-clock time from the case's report: an emergency does not wait
for office hours. Everything here is pure; the service stores the steps on the case row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final

from hub.cases.errors import CaseServiceError
from hub.cases.grid import Role


class Phase(StrEnum):
    """Where a step sits in the full cycle of an emergency."""

    WARN = "warn"
    ACT = "act"
    RECOVER = "recover"
    REVIEW = "review"


#: Phases whose steps must be done before the case closes.
CLOSE_REQUIRES: Final = frozenset({Phase.RECOVER, Phase.REVIEW})
#: Roles that may record any step done on behalf of whoever did it.
ON_BEHALF: Final = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN})


class PlanStepError(CaseServiceError):
    """A step that cannot be marked (no such step); ``reason`` is a stable code."""

    status = 422


class PlanStepDoneError(PlanStepError):
    """The step was done already (by someone the message names)."""

    status = 409


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One step of a plan: who does it (a role or a force kind) and within how long of the report."""

    name: str
    phase: Phase
    within: timedelta
    role: str | None = None
    force: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan for a category and severity ('*': any), optionally only for some event types."""

    id: str
    name_en: str
    name_zh: str
    category: str
    severity: str
    event_types: frozenset[str]
    steps: tuple[PlanStep, ...]

    def matches(self, category: str, severity: str, event_types: frozenset[str]) -> bool:
        """Whether a case of this category, severity and event types falls under the plan."""
        if self.category != category or self.severity not in ("*", severity):
            return False
        return not self.event_types or bool(self.event_types & event_types)

    def specificity(self) -> tuple[int, int]:
        """Higher is more specific: event types first, then an exact severity."""
        return (1 if self.event_types else 0, 0 if self.severity == "*" else 1)


@dataclass(frozen=True, slots=True)
class PlanBook:
    """Every configured plan; :meth:`match` picks the most specific one (config order breaks ties)."""

    plans: tuple[Plan, ...] = ()

    def match(self, category: str, severity: str, event_types: Iterable[str] = ()) -> Plan | None:
        """The plan for a new case, or None."""
        types = frozenset(event_types)
        found = [p for p in self.plans if p.matches(category, severity, types)]
        return max(found, key=Plan.specificity) if found else None


def checklist(plan: Plan, start_ms: int) -> list[dict[str, Any]]:
    """The plan's steps as stored on a case: due from ``start_ms``, not done yet."""
    out = []
    for step in plan.steps:
        who = {"role": step.role} if step.role is not None else {"force": step.force}
        due_ms = start_ms + round(step.within.total_seconds() * 1000)
        out.append({"name": step.name, "phase": step.phase.value, **who, "due_ms": due_ms, "done_ms": None})
    return out


def missing_for_close(steps: Sequence[Mapping[str, Any]] | None) -> tuple[str, ...]:
    """Names of the recover and review steps not done yet (they block closing)."""
    return tuple(str(s["name"]) for s in steps or () if s.get("phase") in CLOSE_REQUIRES and s.get("done_ms") is None)


def mark_done(steps: Sequence[Mapping[str, Any]], name: str, actor: str, now_ms: int) -> list[dict[str, Any]]:
    """The steps with ``name`` done by ``actor`` at ``now_ms``; raise :class:`PlanStepError`."""
    if not any(s.get("name") == name for s in steps):
        known = ", ".join(str(s.get("name")) for s in steps) or "none"
        raise PlanStepError("unknown_plan_step", f"no plan step {name!r}; steps: {known}")
    out = []
    for step in steps:
        copy = dict(step)
        if copy.get("name") == name:
            if copy.get("done_ms") is not None:
                raise PlanStepDoneError("plan_step_done", f"plan step {name!r} was done by {copy.get('done_by')}")
            copy["done_ms"], copy["done_by"] = now_ms, actor
        out.append(copy)
    return out


def may_do(step: Mapping[str, Any], roles: Iterable[str], force_kind: str | None) -> bool:
    """Whether someone with ``roles`` (in a force of ``force_kind``) may mark the step done.

    The step's own role or force does it; operators, supervisors and admins may record it
    on their behalf (the trail names who recorded it).
    """
    held = set(roles)
    if held & ON_BEHALF:
        return True
    if step.get("role") is not None:
        return step["role"] in held
    return Role.FORCE_MEMBER in held and force_kind is not None and step.get("force") == force_kind
