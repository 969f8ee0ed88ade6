"""``GET /api/v1/series``: a metric's history for one device, bucketed (reads the series store)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from hub.api.deps import CtxDep
from hub.api.schemas import SeriesPublic, SeriesRowPublic
from hub.security import authz
from hub.security.auth import PrincipalDep, require
from hub.series.base import StoreError

router = APIRouter(prefix="/api/v1/series", tags=["series"])

DAY_MS = 86_400_000


@router.get("", response_model=SeriesPublic, responses={502: {"description": "the series store failed"}})
def query_series(
    *,
    ctx: CtxDep,
    principal: PrincipalDep,
    device: str,
    metric: str,
    start: Annotated[int | None, Query(description="ms since the epoch; default end - 1 h")] = None,
    end: Annotated[int | None, Query(description="ms since the epoch; default now")] = None,
    every: Annotated[int, Query(ge=1, le=86_400, description="bucket width in seconds")] = 60,
    measurement: str | None = None,
) -> SeriesPublic:
    """Mean of ``metric`` per ``every`` seconds for ``device`` in [start, end) (readers of the device)."""
    require(principal, authz.may_list_devices(principal), "read series")
    registry = ctx.services.registry
    if not authz.reads_hub_wide(principal):
        public = None if registry is None else registry.get_public(device)
        if public is None or not authz.may_read_device(principal, public):
            raise HTTPException(status_code=404, detail=f"device {device!r} is not known to this hub")
    store = ctx.services.store
    if store is None:
        raise HTTPException(status_code=503, detail="no series store")
    end_ms = end if end is not None else ctx.now_ms()
    start_ms = start if start is not None else end_ms - 3_600_000
    if start_ms >= end_ms:
        raise HTTPException(status_code=422, detail="start must be before end")
    if (end_ms - start_ms) // (every * 1000) > 10_000:
        raise HTTPException(status_code=422, detail="more than 10000 buckets: widen 'every' or narrow the range")
    if measurement is None:
        rec = None if registry is None else registry.devices.get(device)
        measurement = rec.kind.value if rec is not None and rec.kind is not None else None
    try:
        rows = store.query(
            device=device, metric=metric, start_ms=start_ms, end_ms=end_ms, every_s=every, measurement=measurement
        )
    except StoreError as exc:
        raise HTTPException(status_code=502, detail=f"series store: {exc}") from exc
    return SeriesPublic(
        device=device,
        metric=metric,
        start_ms=start_ms,
        end_ms=end_ms,
        every_s=every,
        rows=[SeriesRowPublic(ts_ms=r.ts_ms, value=r.value) for r in rows],
    )
