"""The evidence plug-in: the snapshot API (every read checked and written to the access log), the
snapshot sink on ingest, and the retention sweep of snapshots and of the access log."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from edge.wire import WireError, check_id
from hub.context import HubContext
from hub.evidence.access_log import ALLOWED, DENIED, MISSING, AccessLog
from hub.evidence.access_log import DEFAULT_RETENTION_DAYS as DEFAULT_ACCESS_RETENTION_DAYS
from hub.evidence.access_log import router as access_router
from hub.evidence.snapshots import DEFAULT_RETENTION_DAYS, PURGE_INTERVAL_S, SnapshotSink, SnapshotStore
from hub.security import authz
from hub.security.auth import PrincipalDep, refuse

logger = logging.getLogger(__name__)


def _get_store(request: Request) -> SnapshotStore:
    store = request.app.state.ctx.services.snapshots
    if not isinstance(store, SnapshotStore):
        raise HTTPException(status_code=503, detail="snapshot store is not running")
    return store


def _audit_unauthenticated(request: Request, device_id: str, event_id: str) -> Iterator[None]:
    """Record evidence requests refused before anyone is known (no, bad or revoked token: 401) in the access log."""
    try:
        yield
    except HTTPException as exc:
        log = request.app.state.ctx.services.access_log
        if exc.status_code == 401 and isinstance(log, AccessLog) and not getattr(request.state, "audited", False):
            reason = exc.detail.get("reason", "") if isinstance(exc.detail, dict) else str(exc.detail)
            action = "meta" if request.url.path.endswith("/meta") else "image"
            client = request.client.host if request.client is not None else ""
            log.record_unauthenticated(action, device_id, event_id, reason=reason, client=client)
        raise


StoreDep = Annotated[SnapshotStore, Depends(_get_store)]
#: Every route of the router first arms the access log for refusals that happen before the principal is known.
router = APIRouter(prefix="/api/v1/snapshots", tags=["snapshots"], dependencies=[Depends(_audit_unauthenticated)])


def _checked(device_id: str, event_id: str) -> None:
    try:
        check_id(device_id, "device_id")
        check_id(event_id, "event_id")
    except WireError as exc:
        raise HTTPException(status_code=400, detail=exc.detail) from exc


def _evidence(request: Request, principal: authz.Principal, device_id: str, event_id: str, action: str) -> None:
    """Allow or refuse access to one snapshot, and record it either way; 404 when refused (no existence leak)."""
    _checked(device_id, event_id)
    request.state.audited = True  # recorded below, with the principal: not again as unauthenticated
    ctx = request.app.state.ctx
    registry = ctx.services.registry
    # A cluster replica holds only its partitions' devices in memory; a snapshot of another's is checked by its row.
    device = None if registry is None else (registry.get_public(device_id) or registry.get_stored(device_id))
    allowed = authz.may_see_evidence(principal, device)
    log: AccessLog | None = ctx.services.access_log
    if log is not None:
        client = request.client.host if request.client is not None else ""
        log.record(principal, action, device_id, event_id, outcome=ALLOWED if allowed else DENIED, client=client)
    if not allowed:
        if principal.anonymous or not principal.has(*authz.EVIDENCE_ROLES):
            raise refuse(principal, "see evidence")
        raise HTTPException(status_code=404, detail=f"no stored snapshot for {device_id}/{event_id}")


def _missing(request: Request, principal: authz.Principal, device_id: str, event_id: str, action: str) -> None:
    log: AccessLog | None = request.app.state.ctx.services.access_log
    if log is not None:
        log.record(principal, action, device_id, event_id, outcome=MISSING)


@router.get("/{device_id}/{event_id}", response_class=Response)
def get_snapshot(request: Request, device_id: str, event_id: str, store: StoreDep, principal: PrincipalDep) -> Response:
    """The verified, privacy-filtered JPEG of an event (operators, admins, supervisors of its area; audited)."""
    _evidence(request, principal, device_id, event_id, "image")
    data = store.read(device_id, event_id)
    if data is None:
        _missing(request, principal, device_id, event_id, "image")
        raise HTTPException(status_code=404, detail=f"no stored snapshot for {device_id}/{event_id}")
    sha = hashlib.sha256(data).hexdigest()
    headers = {"ETag": f'"{sha}"', "X-Snapshot-SHA256": sha, "Cache-Control": "private, no-store"}
    return Response(content=data, media_type="image/jpeg", headers=headers)


@router.get("/{device_id}/{event_id}/meta")
def get_snapshot_meta(
    request: Request, device_id: str, event_id: str, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """What the event announced about its snapshot, and whether the verified image is stored (as the image)."""
    _evidence(request, principal, device_id, event_id, "meta")
    meta = store.meta(device_id, event_id)
    if meta is None:
        _missing(request, principal, device_id, event_id, "meta")
        raise HTTPException(status_code=404, detail=f"no snapshot announced for {device_id}/{event_id}")
    return asdict(meta)


def purge_expired(store: SnapshotStore, log: AccessLog, now_ms: int | None = None) -> tuple[int, int]:
    """The retention sweep: (snapshots, access records) removed."""
    return store.purge(now_ms), log.purge(now_ms)


def install(ctx: HubContext) -> None:
    """Plug the snapshot store into the hub: sink, API route, retention sweep (snapshots and the access log)."""
    settings = ctx.services.settings
    snapshot_days = getattr(settings, "snapshot_retention_days", DEFAULT_RETENTION_DAYS)
    access_days = getattr(settings, "access_log_retention_days", DEFAULT_ACCESS_RETENTION_DAYS)
    store = SnapshotStore(ctx.data_dir, snapshot_days, ctx.clock, ctx.services.snapshot_blobs)
    log = AccessLog(ctx.engine, ctx.sessions, ctx.clock, access_days)
    ctx.services.snapshots = store
    ctx.services.access_log = log
    ctx.add_sink(SnapshotSink(store, ctx.services, ctx.root))
    ctx.add_router(router)
    ctx.add_router(access_router)
    logger.info("retention: snapshots %.1f days, evidence access log %.1f days", snapshot_days, access_days)

    def retention_task(stop: threading.Event) -> None:
        while True:
            try:
                purge_expired(store, log)
            except Exception:  # loop boundary: retry at the next interval
                logger.exception("retention sweep failed")
            if stop.wait(PURGE_INTERVAL_S):
                return

    ctx.add_task("snapshot-retention", retention_task)
