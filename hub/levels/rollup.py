"""Pure roll-up over the grid-code hierarchy: which units sit under an area and what is counted there.

An area's code is the prefix of every code below it (district 6 digits, street 9, community 12,
unit grid 15; see :mod:`hub.cases.grid`), so attributing a device, alarm or case to a unit is a
prefix test on its grid code. Nothing here does I/O: the API gathers :class:`Fact` records from
the registry, the incident store and the case store and hands them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Final

from hub.cases.grid import CODE_LENGTHS
from hub.devices.registry import Health

#: Device health states counted as down (the registry's; ``unknown`` is not yet known to be down).
DOWN_STATES: Final = frozenset({Health.OFFLINE.value, Health.STALE.value})
#: Code length of the units one level below an area of each length (None = the city: districts).
CHILD_LENGTH: Final[dict[int | None, int]] = {None: 6, 6: 9, 9: 12, 12: 15}


class FactKind(StrEnum):
    """What a fact counts."""

    DEVICE = "device"
    ALARM = "alarm"
    CASE = "case"


@dataclass(frozen=True, slots=True)
class Fact:
    """One device, active alarm or open case, located by its grid code; ``flag`` = down / overdue."""

    kind: FactKind
    grid: str | None
    flag: bool = False


@dataclass(frozen=True, slots=True)
class UnitCounts:
    """What is happening in one area: the page's drill-down row."""

    code: str
    name: str
    level: str
    devices: int = 0
    devices_down: int = 0
    active_alarms: int = 0
    open_cases: int = 0
    overdue: int = 0

    def public(self) -> dict[str, Any]:
        """JSON view."""
        return asdict(self)


def level_of(code: str) -> str:
    """district, street, community or grid by code length ('area' for a length the scheme does not know)."""
    return CODE_LENGTHS.get(len(code), "area")


def child_codes(area: str | None, known: Iterable[str]) -> list[str]:
    """Codes one level below ``area`` (None = the city: every district), from the known areas, sorted."""
    length = CHILD_LENGTH.get(None if area is None else len(area))
    if length is None:
        return []
    return sorted({c for c in known if len(c) == length and (area is None or c.startswith(area))})


def top_codes(roots: Sequence[str]) -> list[str]:
    """The outermost of a principal's areas (an area inside another of them is dropped), sorted."""
    return sorted({r for r in roots if not any(o != r and r.startswith(o) for o in roots)})


def rollup(units: Sequence[str], names: Mapping[str, str], facts: Iterable[Fact]) -> list[UnitCounts]:
    """Count facts per unit (a fact belongs to the unit whose code prefixes its grid); units in order."""
    counts = {u: [0, 0, 0, 0, 0] for u in units}
    lengths = sorted({len(u) for u in units})
    for fact in facts:
        if not fact.grid:
            continue
        for n in lengths:
            row = counts.get(fact.grid[:n])
            if row is None:
                continue
            if fact.kind is FactKind.DEVICE:
                row[0] += 1
                row[1] += fact.flag
            elif fact.kind is FactKind.ALARM:
                row[2] += 1
            else:
                row[3] += 1
                row[4] += fact.flag
    return [UnitCounts(u, names.get(u, u), level_of(u), *counts[u]) for u in units]


def ancestors_in(code: str, allowed: Iterable[str]) -> list[str]:
    """The breadcrumb to ``code``: its ancestor codes (outermost first) that are in ``allowed``, then itself."""
    keep = set(allowed)
    return [code[:n] for n in (6, 9, 12) if n < len(code) and code[:n] in keep] + [code]
