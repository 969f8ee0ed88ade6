"""FastAPI dependencies: the hub context and its core services as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request

from hub.context import HubContext
from hub.devices.registry import DeviceRegistry
from hub.ingest.deadletter import DeadLetterStore
from hub.ingest.gaps import GapManager

T = TypeVar("T")


def get_ctx(request: Request) -> HubContext:
    """The hub context the app was created with."""
    ctx: HubContext = request.app.state.ctx
    return ctx


def running(service: T | None, name: str) -> T:
    """``service``, or 503 naming it when this hub does not run it."""
    if service is None:
        raise HTTPException(status_code=503, detail=f"hub service {name!r} is not running")
    return service


def get_registry(ctx: Annotated[HubContext, Depends(get_ctx)]) -> DeviceRegistry:
    """The device registry."""
    registry: DeviceRegistry = running(ctx.services.registry, "registry")
    return registry


def get_deadletters(ctx: Annotated[HubContext, Depends(get_ctx)]) -> DeadLetterStore:
    """The dead letter store."""
    store: DeadLetterStore = running(ctx.services.deadletters, "deadletters")
    return store


def get_gaps(ctx: Annotated[HubContext, Depends(get_ctx)]) -> GapManager:
    """The gap manager (data-loss records)."""
    gaps: GapManager = running(ctx.services.gaps, "gaps")
    return gaps


CtxDep = Annotated[HubContext, Depends(get_ctx)]
RegistryDep = Annotated[DeviceRegistry, Depends(get_registry)]
DeadLetterDep = Annotated[DeadLetterStore, Depends(get_deadletters)]
GapsDep = Annotated[GapManager, Depends(get_gaps)]
