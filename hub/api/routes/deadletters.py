"""``/api/v1/deadletters``: list, inspect, requeue after a fix, purge (operators and admins; demo: read-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query

from edge.wire import WireError
from hub.api.deps import CtxDep, DeadLetterDep
from hub.api.schemas import (
    DeadLetterDetail,
    DeadLetterPage,
    DeadLetterPublic,
    PurgeResult,
    RequeueRequest,
    RequeueResult,
)
from hub.ingest.deadletter import DeadLetterError
from hub.ingest.models import DeadLetterRow
from hub.security import authz
from hub.security.auth import PrincipalDep, require

router = APIRouter(prefix="/api/v1/deadletters", tags=["deadletters"])


def _public(row: DeadLetterRow) -> DeadLetterPublic:
    text = row.payload.decode("utf-8", errors="replace")
    return DeadLetterPublic(
        id=row.id,
        topic=row.topic,
        device_id=row.device_id,
        reason=row.reason,
        detail=row.detail,
        source=row.source,
        received_ms=row.received_ms,
        payload_size=row.payload_size,
        truncated=row.truncated,
        payload_preview=text[:512],
    )


@router.get("", response_model=DeadLetterPage)
def list_deadletters(
    *,
    store: DeadLetterDep,
    principal: PrincipalDep,
    reason: str | None = None,
    device: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DeadLetterPage:
    """Dead letters newest first, filtered by reason, device and received time."""
    require(principal, authz.may_read_operations(principal), "read dead letters")
    total, rows = store.list_page(
        reason=reason, device=device, since_ms=since_ms, until_ms=until_ms, limit=limit, offset=offset
    )
    return DeadLetterPage(total=total, limit=limit, offset=offset, items=[_public(r) for r in rows])


@router.get("/{dead_letter_id}", response_model=DeadLetterDetail, responses={404: {"description": "no such id"}})
def get_deadletter(dead_letter_id: int, store: DeadLetterDep, principal: PrincipalDep) -> DeadLetterDetail:
    """One dead letter with its stored payload."""
    require(principal, authz.may_read_operations(principal), "read dead letters")
    try:
        row = store.get(dead_letter_id)
    except DeadLetterError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return DeadLetterDetail(
        **_public(row).model_dump(),
        payload_text=row.payload.decode("utf-8", errors="replace"),
        payload_hex=row.payload[:4096].hex(),
    )


@router.post(
    "/{dead_letter_id}/requeue",
    response_model=RequeueResult,
    responses={404: {"description": "no such id"}, 409: {"description": "cannot be requeued"}, 422: {}},
)
def requeue_deadletter(
    dead_letter_id: int,
    store: DeadLetterDep,
    ctx: CtxDep,
    principal: PrincipalDep,
    body: Annotated[RequeueRequest | None, Body()] = None,
) -> RequeueResult:
    """Re-inject the stored (or a corrected) payload through ingest; 422 with the reason if still refused."""
    require(principal, authz.may_change_operations(principal), "requeue dead letters")
    ingest = ctx.services.ingest
    if ingest is None:
        raise HTTPException(status_code=503, detail="ingest is not running")
    payload = None if body is None or body.payload is None else body.payload.encode("utf-8")
    try:
        store.requeue(dead_letter_id, ingest.process, ctx.now_ms(), payload)
    except DeadLetterError as exc:
        raise HTTPException(status_code=404 if exc.code == "not_found" else 409, detail=str(exc)) from exc
    except WireError as exc:
        raise HTTPException(status_code=422, detail={"reason": exc.reason, "detail": exc.detail}) from exc
    return RequeueResult(id=dead_letter_id, requeued=True)


@router.delete("", response_model=PurgeResult)
def purge_deadletters(
    store: DeadLetterDep, principal: PrincipalDep, reason: str | None = None, before_ms: int | None = None
) -> PurgeResult:
    """Delete dead letters: all of them, or those of one reason and/or received before a time."""
    require(principal, authz.may_change_operations(principal), "purge dead letters")
    return PurgeResult(deleted=store.purge(reason=reason, before_ms=before_ms))
