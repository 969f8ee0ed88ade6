"""``GET /api/v1/devices`` and ``GET /api/v1/devices/{id}``: the registry with health and latest values."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from hub.api.deps import RegistryDep
from hub.api.schemas import DevicePublic

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("", response_model=list[DevicePublic])
def list_devices(
    registry: RegistryDep, site: str | None = None, grid: str | None = None, state: str | None = None
) -> list[DevicePublic]:
    """Every known device (optionally filtered by site, grid or health state), sorted by id."""
    out = []
    for d in registry.list_public():
        if (site and d["site"] != site) or (grid and d["grid"] != grid) or (state and d["state"] != state):
            continue
        out.append(DevicePublic(**d))
    return out


@router.get("/{device_id}", response_model=DevicePublic, responses={404: {"description": "unknown device"}})
def get_device(device_id: str, registry: RegistryDep) -> DevicePublic:
    """One device, or 404 when the hub has never heard of it."""
    d = registry.get_public(device_id)
    if d is None:
        raise HTTPException(status_code=404, detail=f"device {device_id!r} is not known to this hub")
    return DevicePublic(**d)
