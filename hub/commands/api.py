"""REST API of device commands: send one, list a device's, read one; and the ops each device kind offers.

``POST /api/v1/devices/{id}/commands`` needs command rights on the device's grid
(:func:`hub.security.authz.may_command_device`); reading commands needs command rights at all.
A device outside the caller's view answers 404 like an unknown one. Every request,
refused ones included, is recorded in the access audit.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from edge import wire
from hub.commands.service import DEFAULT_TTL_S, CommandService, IdempotencyConflictError, NewCommand
from hub.devices.registry import DeviceRegistry
from hub.ingest.sinks import DeviceRef
from hub.security import authz
from hub.security.auth import PrincipalDep, require
from hub.security.authz import Principal

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["commands"])

MAX_TTL_S: Final = wire.MAX_TTL_MS // 1000
MAX_KEY_CHARS: Final = 128


class CommandCreate(BaseModel):
    """A command for one device."""

    model_config = ConfigDict(extra="forbid")
    op: str = Field(max_length=64, description="one of the device kind's ops (GET /api/v1/command-ops)")
    args: dict[str, Any] = Field(default_factory=dict, description="op arguments, flat scalars (e.g. seconds)")
    ttl_s: float = Field(
        default=DEFAULT_TTL_S,
        gt=0,
        le=MAX_TTL_S,
        description="time-to-live: the device runs it only within this long of receiving it (its own clock)",
    )


def get_commands(request: Request) -> CommandService:
    """The command service on the hub context."""
    service = request.app.state.ctx.services.commands
    if not isinstance(service, CommandService):
        raise HTTPException(status_code=503, detail="the command service is not running")
    return service


def get_registry(request: Request) -> DeviceRegistry:
    """The device registry."""
    registry = request.app.state.ctx.services.registry
    if not isinstance(registry, DeviceRegistry):
        raise HTTPException(status_code=503, detail="the device registry is not running")
    return registry


CommandsDep = Annotated[CommandService, Depends(get_commands)]
DevicesDep = Annotated[DeviceRegistry, Depends(get_registry)]


def _device(registry: DeviceRegistry, principal: Principal, device_id: str) -> dict[str, Any]:
    require(principal, authz.may_list_devices(principal), "read devices")
    device = registry.get_public(device_id)
    if device is None or not authz.may_read_device(principal, device):
        raise HTTPException(status_code=404, detail=f"device {device_id!r} is not known to this hub")
    return device


def device_ref(device: dict[str, Any]) -> DeviceRef:
    """The registry's public view of a device as a sink-style reference."""
    kind = device.get("kind")
    known = wire.DeviceKind(kind) if isinstance(kind, str) and kind in wire.DeviceKind._value2member_map_ else None
    return DeviceRef(device["id"], device["site"], known, device.get("grid"))


def _refuse_command(request: Request, principal: Principal, device: dict[str, Any], op: str) -> None:
    """403 (recorded) unless the principal may command this device."""
    if authz.may_command_device(principal, device):
        return
    audit = request.app.state.ctx.services.access_log
    if audit is not None:
        roles = ",".join(sorted(principal.roles))
        audit.record_event(principal.id, roles, f"command:{op}"[:32], device["id"], "-", outcome="denied")
    require(principal, authz.may_command_devices(principal), f"send commands to device {device['id']}")
    raise HTTPException(
        status_code=403,
        detail={
            "reason": "outside_area",
            "message": f"{principal.id} may command devices of {', '.join(principal.grids)} only; "
            f"device {device['id']} is in grid {device.get('grid') or '(none)'}",
        },
    )


@router.get("/command-ops")
def command_ops(principal: PrincipalDep) -> dict[str, Any]:
    """Every command op, and the ops each device kind offers an operator (the page's buttons)."""
    require(principal, authz.may_list_devices(principal), "read devices")
    return {
        "ops": [op.value for op in wire.CommandOp],
        "by_kind": {kind.value: [op.value for op in ops] for kind, ops in wire.KIND_OPS.items()},
        "unknown_kind": [op.value for op in wire.UNKNOWN_KIND_OPS],
        "may_command": authz.may_command_devices(principal),
    }


@router.post(
    "/devices/{device_id}/commands",
    status_code=201,
    responses={
        200: {"description": "the Idempotency-Key named an earlier, identical command: that one"},
        403: {"description": "no command rights on this device's grid"},
        404: {"description": "unknown device"},
        409: {"description": "the Idempotency-Key names a different command"},
        422: {"description": "unknown op, op not offered by this device kind, or bad args"},
    },
)
def send_command(
    *,
    request: Request,
    response: Response,
    device_id: str,
    body: CommandCreate,
    principal: PrincipalDep,
    service: CommandsDep,
    registry: DevicesDep,
    idempotency_key: Annotated[str | None, Header(max_length=MAX_KEY_CHARS)] = None,
) -> dict[str, Any]:
    """Store the command, publish it (QoS 1) on the device's ``cmd`` topic and answer with its id and state."""
    device = _device(registry, principal, device_id)
    _refuse_command(request, principal, device, body.op)
    known = [op.value for op in wire.CommandOp]
    if body.op not in known:
        raise HTTPException(
            status_code=422,
            detail={"reason": "unknown_op", "message": f"unknown op {body.op!r}; known ops: {', '.join(known)}"},
        )
    op = wire.CommandOp(body.op)
    offered = wire.ops_for(device.get("kind"))
    if op not in offered:
        kind = device.get("kind") or "unknown-kind"
        raise HTTPException(
            status_code=422,
            detail={
                "reason": "op_not_offered",
                "message": f"{kind} devices do not take {op.value!r}; their ops: {', '.join(offered)}",
            },
        )
    ttl_ms = max(1, int(body.ttl_s * 1000))
    try:  # args must pass the wire contract exactly as the device will decode them
        wire.decode(wire.Channel.CMD, wire.encode(wire.Command("c-check", op, wire.MIN_TS_MS, None, body.args, ttl_ms)))
    except wire.PayloadError as exc:
        raise HTTPException(status_code=422, detail={"reason": exc.reason, "message": f"args: {exc.detail}"}) from exc
    new = NewCommand(
        op=op,
        args=body.args,
        ttl_ms=ttl_ms,
        requested_by=principal.id,
        roles=",".join(sorted(principal.roles)),
        idempotency_key=idempotency_key or None,
    )
    try:
        view, created = service.create(device_ref(device), new)
    except IdempotencyConflictError as exc:
        raise HTTPException(status_code=409, detail={"reason": "idempotency_conflict", "message": str(exc)}) from exc
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/devices/{device_id}/commands/{view['id']}"
    return view


@router.get("/devices/{device_id}/commands")
def list_commands(
    *,
    device_id: str,
    principal: PrincipalDep,
    service: CommandsDep,
    registry: DevicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The device's commands, newest first, with their state and ack."""
    _device(registry, principal, device_id)
    require(principal, authz.may_command_devices(principal), "read device commands")
    return service.list(device_id, limit=limit, offset=offset)


@router.get("/devices/{device_id}/commands/{command_id}", responses={404: {"description": "no such command"}})
def get_command(
    *, device_id: str, command_id: str, principal: PrincipalDep, service: CommandsDep, registry: DevicesDep
) -> dict[str, Any]:
    """One command: ``state`` is queued, sent, acked, failed, expired or timed_out; ``ack`` what the device said."""
    _device(registry, principal, device_id)
    require(principal, authz.may_command_devices(principal), "read device commands")
    view = service.get(command_id)
    if view is None or view["device_id"] != device_id:
        raise HTTPException(status_code=404, detail=f"no command {command_id!r} for device {device_id!r}")
    return view
