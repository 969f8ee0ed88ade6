"""``GET /api/v1/cameras``: the camera view, filtered by area and state, one page at a time.

Each row joins the camera's inventory (location, model, analytics from its labels), its health
from the registry (state, stream up, fps, last frame age) and the :class:`~hub.cameras.board.CameraBoard`
(tamper conditions, the latest redacted snapshot's event id: only for callers who may see evidence).
The caller sees the cameras of their subtree only, like ``GET /api/v1/devices``; ``summary`` counts
every camera that passes the area filter, so the header stays right while paging.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from hub.api.deps import CtxDep, RegistryDep
from hub.cameras.board import STATE_FILTERS, CameraBoard, camera_row, matches, summarize
from hub.security import authz
from hub.security.auth import PrincipalDep, require

router = APIRouter(prefix="/api/v1", tags=["cameras"])
DEFAULT_PAGE: int = 50
StateQuery = Annotated[str | None, Query(pattern=f"^({'|'.join(STATE_FILTERS)})$", description="camera state filter")]


@router.get("/cameras")
def list_cameras(
    *,
    ctx: CtxDep,
    registry: RegistryDep,
    principal: PrincipalDep,
    area: Annotated[str | None, Query(pattern=r"^[0-9]{6,15}$", description="grid-code prefix")] = None,
    state: StateQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """One page of the caller's cameras (sorted by id), the filtered total and the area's summary."""
    require(principal, authz.may_read_levels(principal), "read the camera view")
    if area and not authz.may_read_area(principal, area):
        raise HTTPException(status_code=404, detail={"reason": "area_not_found", "message": f"no area {area}"})
    board: CameraBoard | None = ctx.services.camera_board
    states = board.states() if board is not None else {}
    now_ms = ctx.now_ms()
    rows = [
        camera_row(d, states.get(d["id"]), now_ms, evidence=authz.may_see_evidence(principal, d))
        for d in registry.list_public()
        if d["kind"] == "camera" and authz.may_read_device(principal, d)
    ]
    in_area = [r for r in rows if matches(r, area, None)]
    selected = [r for r in in_area if matches(r, None, state)]
    return {
        "area": area,
        "state": state,
        "total": len(selected),
        "offset": offset,
        "limit": limit,
        "summary": summarize(in_area),
        "items": selected[offset : offset + limit],
    }
