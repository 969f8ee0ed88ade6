"""``GET /api/v1/devices`` and ``GET /api/v1/devices/{id}``: the registry with health and latest values.

Operators, admins, integrations and the demo viewer see every device; supervisors, grid workers
and force members the devices of their areas, i.e. their subtree of the grid-code hierarchy
(others answer 404 like unknown ones); residents none (403).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from hub.api.deps import RegistryDep
from hub.api.schemas import DevicePublic
from hub.security import authz
from hub.security.auth import PrincipalDep, require

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("", response_model=list[DevicePublic])
def list_devices(
    registry: RegistryDep,
    principal: PrincipalDep,
    site: str | None = None,
    grid: str | None = None,
    state: str | None = None,
) -> list[DevicePublic]:
    """Every device the caller may see (optionally by site, grid code or prefix, health state), sorted by id."""
    require(principal, authz.may_list_devices(principal), "read devices")
    out = []
    for d in registry.list_public():
        if not authz.may_read_device(principal, d):
            continue
        if (site and d["site"] != site) or (state and d["state"] != state):
            continue
        if grid and not (d["grid"] or "").startswith(grid):
            continue
        out.append(DevicePublic(**d))
    return out


@router.get("/{device_id}", response_model=DevicePublic, responses={404: {"description": "unknown device"}})
def get_device(device_id: str, registry: RegistryDep, principal: PrincipalDep) -> DevicePublic:
    """One device, or 404 when the hub has never heard of it (or it lies outside the caller's areas)."""
    require(principal, authz.may_list_devices(principal), "read devices")
    d = registry.get_public(device_id)
    if d is None or not authz.may_read_device(principal, d):
        raise HTTPException(status_code=404, detail=f"device {device_id!r} is not known to this hub")
    return DevicePublic(**d)
