"""``GET /api/v1/gaps``: data-loss records and the gaps open right now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub.api.deps import GapsDep
from hub.api.schemas import DataLossPublic, GapsPage, OpenGapPublic
from hub.security import authz
from hub.security.auth import PrincipalDep, require

router = APIRouter(prefix="/api/v1/gaps", tags=["gaps"])


@router.get("", response_model=GapsPage)
def list_gaps(
    gaps: GapsDep,
    principal: PrincipalDep,
    device: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> GapsPage:
    """Recorded data loss, newest first, plus every gap still waiting for a resend (operators, admins)."""
    require(principal, authz.may_read_operations(principal), "read data-loss records")
    total, items = gaps.list_page(device=device, limit=limit, offset=offset)
    open_now = [g for g in gaps.open_gaps() if device is None or g["device_id"] == device]
    return GapsPage(
        total=total,
        limit=limit,
        offset=offset,
        items=[DataLossPublic(**i) for i in items],
        open=[OpenGapPublic(**g) for g in open_now],
    )
