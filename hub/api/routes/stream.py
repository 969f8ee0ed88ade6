"""``GET /api/v1/stream``: live changes from the hub's event bus as server-sent events."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from hub.api.deps import CtxDep
from hub.bus import BusEvent
from hub.security import authz
from hub.security.auth import StreamPrincipalDep
from hub.texts.catalogue import Lang
from hub.texts.language import LangDep, bus_data

router = APIRouter(prefix="/api/v1", tags=["stream"])

#: Seconds between keep-alive comments (they also let the server notice a gone client).
PING_S = 2.0


def _frame(event: BusEvent, lang: Lang = "en") -> str:
    data = json.dumps(bus_data(event.kind, event.data, lang), separators=(",", ":"), default=str)
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"


@router.get("/stream", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
def stream(ctx: CtxDep, principal: StreamPrincipalDep, lang: LangDep, kinds: str | None = None) -> StreamingResponse:
    """Server-sent events: one per bus change (``device``, ``data_loss``, ``incident``...); ``kinds`` filters.

    The token comes as ``Authorization: Bearer`` or, for EventSource, ``?token=``; each change is sent
    only to callers who may read the object it is about (:func:`hub.security.authz.may_see_event`). Titles and
    notes the hub wrote come in ``?lang=`` (EventSource cannot set Accept-Language either).
    """
    wanted = None if not kinds else set(kinds.split(","))
    stopping = ctx.services.stopping

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
                        yield _frame(event, lang)
        finally:
            ctx.bus.unsubscribe(sub)

    return StreamingResponse(frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
