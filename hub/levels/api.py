"""``GET /api/v1/levels``: the drill-down of the grid-code hierarchy with rolled-up counts.

Without ``area`` the answer lists the caller's top units: every district for hub-wide readers
(operators, admins), the caller's own areas for everyone else (a street supervisor gets their
street). With ``area`` it lists the units one level below (a district's streets, a street's
communities, a community's unit grids), each with devices, devices down, active alarms, open
cases and overdue cases, plus the area's own totals and its breadcrumb. An area outside the
caller's subtree answers 404 like an unknown one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from hub.api.deps import CtxDep
from hub.cases.series import open_case_counts
from hub.context import HubContext
from hub.levels.rollup import DOWN_STATES, Fact, FactKind, ancestors_in, child_codes, level_of, rollup, top_codes
from hub.security import authz
from hub.security.auth import PrincipalDep, require
from hub.security.authz import Principal

router = APIRouter(prefix="/api/v1", tags=["levels"])
AreaQuery = Annotated[str | None, Query(pattern=r"^[0-9]{6,15}$", description="area code (6/9/12/15 digits)")]


def _facts(ctx: HubContext, area: str | None) -> list[Fact]:
    """Devices, open incidents and open cases (in ``area`` when given) as roll-up facts."""
    facts: list[Fact] = []
    registry = ctx.services.registry
    if registry is not None:
        for d in registry.list_public():
            grid = d.get("grid")
            if not area or (grid or "").startswith(area):
                facts.append(Fact(FactKind.DEVICE, grid, d["state"] in DOWN_STATES))
    queries = ctx.services.incident_queries
    if queries is not None:
        for grid, n in queries.open_by_grid(area).items():
            facts.extend([Fact(FactKind.ALARM, grid)] * n)
    cases = ctx.services.cases
    if cases is not None:
        for grid, _state, sla_level, n in open_case_counts(cases, area):
            facts.extend([Fact(FactKind.CASE, grid, sla_level == "red")] * n)
    return facts


def _names(ctx: HubContext) -> dict[str, str]:
    cases = ctx.services.cases
    if cases is None:
        return {}
    return {code: a.name for code, a in cases.directory.model().areas.items()}


def _roots(principal: Principal, known: list[str]) -> list[str]:
    if authz.reads_hub_wide(principal):
        return child_codes(None, known)
    return top_codes([g for g in principal.grids if g in known])


@router.get("/levels")
def levels(ctx: CtxDep, principal: PrincipalDep, area: AreaQuery = None) -> dict[str, Any]:
    """The units below ``area`` (or the caller's top units) with devices down, alarms, open and overdue cases."""
    require(principal, authz.may_read_levels(principal), "read the level drill-down")
    names = _names(ctx)
    known = list(names)
    if area is None:
        units = _roots(principal, known)
        rows = rollup(units, names, _facts(ctx, None))
        return {"area": None, "path": [], "units": [r.public() for r in rows]}
    if area not in names or not authz.may_read_area(principal, area):
        raise HTTPException(status_code=404, detail={"reason": "area_not_found", "message": f"no area {area}"})
    units = child_codes(area, known)
    own, *rows = rollup([area, *units], names, _facts(ctx, area))
    visible = [c for c in known if authz.may_read_area(principal, c)]
    path = [{"code": c, "name": names.get(c, c), "level": level_of(c)} for c in ancestors_in(area, visible)]
    return {"area": own.public(), "path": path, "units": [r.public() for r in rows]}
