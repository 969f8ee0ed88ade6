"""``install(ctx)``: the level drill-down API plugs into the hub."""

from __future__ import annotations

from hub.context import HubContext
from hub.levels.api import router


def install(ctx: HubContext) -> None:
    """Mount the drill-down API (it reads the registry, incidents and cases through ``ctx.services``)."""
    ctx.add_router(router)
