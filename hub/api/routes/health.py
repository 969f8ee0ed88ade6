"""``GET /healthz`` (broker connected, store ok, spool depth, state DB ok) and ``GET /metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hub.api.deps import CtxDep
from hub.api.schemas import HealthPublic
from hub.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def healthz(ctx: CtxDep, response: Response) -> HealthPublic:
    """Liveness: 200 when the broker connection is up and the series store and the state DB take
    writes, else 503."""
    ingest = ctx.services.ingest
    store = ctx.services.store
    writer = ctx.services.writer
    registry = ctx.services.registry
    state_db = ctx.services.state_db
    stats = getattr(writer, "stats", None)
    spool = getattr(stats, "spooled_bytes", None)
    spool_bytes = int(spool) if isinstance(spool, (int, float)) else None
    held = getattr(stats, "unspooled_lines", 0)  # batches in memory: the store and the spool refused them
    body = HealthPublic(
        ok=False,
        broker_connected=bool(ingest is not None and ingest.connected),
        store=str(getattr(store, "name", "none")),
        store_ok=store is not None and not spool_bytes and not held,
        spool_bytes=spool_bytes,
        state_ok=not getattr(state_db, "down", False),
        devices=0 if registry is None else len(registry.devices),
    )
    body.ok = body.broker_connected and body.store_ok and body.state_ok
    if not body.ok:
        response.status_code = 503
    return body


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(ctx: CtxDep) -> Response:
    """Prometheus text exposition of the hub's metrics."""
    hub_metrics = ctx.services.metrics
    data = b"" if hub_metrics is None else hub_metrics.render()
    return Response(content=data, media_type=CONTENT_TYPE)
