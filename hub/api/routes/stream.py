"""``GET /api/v1/stream``: live changes from the hub's event bus as server-sent events."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from hub import authz
from hub.api.deps import CtxDep
from hub.auth import StreamPrincipalDep
from hub.bus import BusEvent

router = APIRouter(prefix="/api/v1", tags=["stream"])

#: Seconds between keep-alive comments (they also let the server notice a gone client).
PING_S = 2.0


def _frame(event: BusEvent) -> str:
    data = json.dumps(event.data, separators=(",", ":"), default=str)
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"


@router.get("/stream", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
def stream(ctx: CtxDep, principal: StreamPrincipalDep, kinds: str | None = None) -> StreamingResponse:
    """Server-sent events: one per bus change (``device``, ``data_loss``, ``incident``...); ``kinds`` filters.

    The token comes as ``Authorization: Bearer`` or, for EventSource, ``?token=``; each change is sent
    only to callers who may read the object it is about (:func:`hub.authz.may_see_event`).
    """
    wanted = None if not kinds else set(kinds.split(","))
    stopping = ctx.services.get("stopping")

    def frames() -> Iterator[str]:
        sub = ctx.bus.subscribe(remote=True)  # a cluster replica's clients see every replica's changes
        try:
            yield ": connected\n\n"
            while stopping is None or not stopping.is_set():
                events = sub.get(PING_S)
                if not events:
                    yield ": ping\n\n"
                    continue
                for event in events:
                    if (wanted is None or event.kind in wanted) and authz.may_see_event(
                        principal, event.kind, event.data
                    ):
                        yield _frame(event)
        finally:
            ctx.bus.unsubscribe(sub)

    return StreamingResponse(frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
