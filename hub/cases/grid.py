"""Pure grid model: city → district → street → community → unit grid, people, forces.

Grid codes follow the national scheme: 6 digits district + 3 street + 3 community +
3 sequence, so a unit grid's ancestors are prefixes of its code (district = 6,
street = 9, community = 12, unit grid = 15 digits). The city sits above every
district and has its own code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

CODE_LENGTHS: Final[dict[int, str]] = {6: "district", 9: "street", 12: "community", 15: "grid"}
LEVELS: Final[tuple[str, ...]] = ("grid", "community", "street", "district", "city")
_DIGITS = re.compile(r"^[0-9]+$")


class Role(StrEnum):
    """What a person may do in the case flow."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    GRID_WORKER = "grid_worker"
    FORCE_MEMBER = "force_member"
    RESIDENT = "resident"
    ADMIN = "admin"
    INTEGRATION = "integration"


class GridError(ValueError):
    """An invalid grid code, a missing parent or a dangling reference; ``key`` names where."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def code_level(code: str) -> str:
    """The level of an area code (district, street, community, grid); raise :class:`GridError`."""
    if not _DIGITS.match(code) or len(code) not in CODE_LENGTHS:
        raise GridError("code", f"{code!r} is not a 6/9/12/15-digit area code")
    if code.endswith("000") and len(code) > 6:
        raise GridError("code", f"{code!r}: the last 3-digit segment must not be 000")
    return CODE_LENGTHS[len(code)]


def parent_code(code: str) -> str | None:
    """The code of the area one level up, or None for a district (its parent is the city)."""
    code_level(code)
    return code[:-3] if len(code) > 6 else None


def ancestors(code: str) -> list[str]:
    """The code itself and every ancestor area code, innermost first (city not included)."""
    code_level(code)
    return [code[:n] for n in (15, 12, 9, 6) if n <= len(code)]


def point_in_polygon(lon: float, lat: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Ray casting: True when (lon, lat) lies inside the polygon (lon/lat vertex list)."""
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if (y1 > lat) != (y2 > lat):
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < x_cross:
                inside = not inside
    return inside


@dataclass(frozen=True, slots=True)
class Area:
    """A district, street, community or unit grid."""

    code: str
    name: str
    households: int = 0
    population: int = 0
    polygon: tuple[tuple[float, float], ...] = ()

    @property
    def level(self) -> str:
        """district, street, community or grid."""
        return code_level(self.code)


@dataclass(frozen=True, slots=True)
class Force:
    """A professional force (fire, police, urban management...)."""

    id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class Responsibility:
    """Which areas (a code covers its descendants) and categories ("*" = all) a person answers for."""

    grids: tuple[str, ...]
    categories: tuple[str, ...] = ("*",)

    def covers(self, grid_code: str, category: str) -> bool:
        """True when this responsibility covers the grid (or an ancestor) and the category."""
        cat_ok = "*" in self.categories or category in self.categories
        return cat_ok and any(grid_code.startswith(g) for g in self.grids)


@dataclass(frozen=True, slots=True)
class Person:
    """Someone in the flow, with roles, an optional force and responsibilities."""

    id: str
    name: str
    roles: frozenset[str]
    force_id: str | None = None
    responsibilities: tuple[Responsibility, ...] = ()

    def has_role(self, *roles: str) -> bool:
        """True when the person holds any of ``roles``."""
        return bool(self.roles.intersection(roles))


@dataclass(frozen=True, slots=True)
class GridModel:
    """A whole city's areas, forces, people and routing table (category → force id)."""

    city_code: str
    city_name: str
    areas: dict[str, Area] = field(default_factory=dict)
    forces: dict[str, Force] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Check codes, parents and references; raise :class:`GridError` naming the key."""
        for code, area in self.areas.items():
            code_level(code)
            parent = parent_code(code)
            if parent is not None and parent not in self.areas:
                raise GridError(f"grids.{code}", f"parent area {parent} is not defined")
            for i, (lon, lat) in enumerate(area.polygon):
                if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                    raise GridError(f"grids.{code}.polygon[{i}]", "lon/lat out of range")
        for pid, person in self.people.items():
            if person.force_id is not None and person.force_id not in self.forces:
                raise GridError(f"people.{pid}.force", f"unknown force {person.force_id!r}")
            for i, resp in enumerate(person.responsibilities):
                for g in resp.grids:
                    if g not in self.areas and g != self.city_code:
                        raise GridError(f"people.{pid}.responsibilities[{i}].grids", f"unknown grid {g}")
        for category, force_id in self.routes.items():
            if force_id not in self.forces:
                raise GridError(f"routing.{category}", f"unknown force {force_id!r}")

    def unit_grids(self) -> Iterable[Area]:
        """Every unit grid (15-digit code)."""
        return (a for a in self.areas.values() if len(a.code) == 15)

    def locate(self, lon: float, lat: float) -> Area | None:
        """The unit grid whose polygon contains the point, else the innermost containing area."""
        best: Area | None = None
        for area in self.areas.values():
            inside = len(area.polygon) >= 3 and point_in_polygon(lon, lat, area.polygon)
            if inside and (best is None or len(area.code) > len(best.code)):
                best = area
        return best

    def community_of(self, code: str) -> str | None:
        """The community code (12 digits) of a unit grid or community, else None."""
        return code[:12] if len(code) >= 12 else None
