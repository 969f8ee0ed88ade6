"""``install(ctx)``: the camera platform plugs into the hub (its board as a sink, its API)."""

from __future__ import annotations

from hub.cameras.api import router
from hub.cameras.board import CameraBoard
from hub.context import HubContext


def install(ctx: HubContext) -> None:
    """Follow camera conditions and snapshots; mount ``GET /api/v1/cameras``."""
    board = CameraBoard()
    ctx.services.camera_board = board
    ctx.add_sink(board)
    ctx.add_router(router)
