"""Pure routing: grid + category → the responsible grid worker and professional force.

The routing table (category → force id) is data from the YAML. A grid worker
answers for a grid when one of their responsibilities covers the grid and the
category. When a cell or category has no owner, the case falls to the community
(属地兜底): whoever answers for the community code, and the community is marked
as the owner.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.cases.grid import GridModel, Person


class RoutingError(LookupError):
    """The grid is unknown, so nobody can be found."""

    def __init__(self, grid_code: str) -> None:
        super().__init__(f"unknown grid {grid_code!r}")
        self.grid_code = grid_code


@dataclass(frozen=True, slots=True)
class Route:
    """Who gets a case: worker, force, the force member, and whether it fell back to the community."""

    grid_code: str
    worker_id: str | None
    force_id: str | None
    force_member_id: str | None
    fallback: bool

    @property
    def assignees(self) -> list[str]:
        """Everyone who may accept the case."""
        return [p for p in (self.worker_id, self.force_member_id) if p is not None]


def _best(people: list[Person], grid_code: str, category: str) -> tuple[Person, int] | None:
    """The person whose covering responsibility is most specific (deepest code, exact category), and its depth."""
    best: tuple[int, int, str] | None = None
    chosen: tuple[Person, int] | None = None
    for person in people:
        for resp in person.responsibilities:
            if not resp.covers(grid_code, category):
                continue
            depth = max(len(g) for g in resp.grids if grid_code.startswith(g))
            exact = 1 if category in resp.categories else 0
            # most specific wins; ties go to the smallest id so routing is deterministic
            key = (-depth, -exact, person.id)
            if best is None or key < best:
                best, chosen = key, (person, depth)
    return chosen


def route(model: GridModel, grid_code: str, category: str) -> Route:
    """Resolve the worker and force for a case in ``grid_code`` of ``category``."""
    if grid_code not in model.areas:
        raise RoutingError(grid_code)
    people = list(model.people.values())
    found = _best([p for p in people if p.has_role("grid_worker")], grid_code, category)
    # a worker owning only a wider area (community or above) means nobody owns this cell: 属地兜底
    fallback = found is None or found[1] < len(grid_code)
    if found is None:
        found = _best([p for p in people if p.has_role("supervisor")], grid_code, category)
    force_id = model.routes.get(category)
    member: Person | None = None
    if force_id is not None:
        members = [p for p in people if p.force_id == force_id and p.has_role("force_member")]
        hit = _best(members, grid_code, category)
        member = hit[0] if hit else (min(members, key=lambda p: p.id) if members else None)
    else:
        fallback = True
    worker_id = found[0].id if found else None
    return Route(grid_code, worker_id, force_id, member.id if member else None, fallback)
