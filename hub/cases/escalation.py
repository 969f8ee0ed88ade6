"""Pure escalation: an overdue case climbs community → street → district → city.

The first red (limit exceeded) lifts a case from its community to the street; each
further full limit of overdue time lifts it one more level, up to the city.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from hub.cases.grid import GridModel

#: Escalation levels by index; 0 is where every case starts.
ESCALATION_LEVELS: Final[tuple[str, ...]] = ("community", "street", "district", "city")
_PREFIX: Final[dict[str, int]] = {"community": 12, "street": 9, "district": 6}


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """Where a case goes: the level, the area code at that level and who gets notified."""

    level: int
    level_name: str
    area_code: str
    notify: tuple[str, ...]


def due_level(spent: timedelta, limit: timedelta) -> int:
    """The escalation level owed after ``spent`` working time against ``limit``."""
    if spent <= limit:
        return 0
    if limit <= timedelta(0):
        return len(ESCALATION_LEVELS) - 1
    extra = int((spent - limit) / limit)
    return min(len(ESCALATION_LEVELS) - 1, 1 + extra)


def area_at(model: GridModel, grid_code: str, level: int) -> str:
    """The area code of ``grid_code`` at escalation ``level`` (the city code at the top)."""
    name = ESCALATION_LEVELS[level]
    if name == "city":
        return model.city_code
    return grid_code[: _PREFIX[name]]


def step(model: GridModel, grid_code: str, level: int, category: str) -> EscalationStep:
    """The escalation step to ``level``: supervisors (or admins) responsible for that area are notified."""
    level = max(0, min(level, len(ESCALATION_LEVELS) - 1))
    area = area_at(model, grid_code, level)
    top = level == len(ESCALATION_LEVELS) - 1
    notify = sorted(
        p.id
        for p in model.people.values()
        if p.has_role("supervisor", "admin")
        and (
            any(model.city_code in r.grids for r in p.responsibilities) or p.has_role("admin")
            if top
            else any(r.covers(area, category) for r in p.responsibilities)
        )
    )
    return EscalationStep(level, ESCALATION_LEVELS[level], area, tuple(notify))
