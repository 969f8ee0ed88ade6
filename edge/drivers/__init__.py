"""Driver seam: what the edge agent polls, and the registry that finds a driver by its ``type``.

A driver module defines a pydantic config model whose ``type`` is ``Literal[KEY]``
(``extra="forbid"``, a description on every field), a class satisfying
:class:`Driver`, and registers both with :func:`register_driver`. Modules are
imported lazily by key (:data:`BUILTIN_DRIVERS`, plus plug-ins declared in the
``gridsentinel.drivers`` entry points) so an edge box only needs the extras of the
drivers it actually configures.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Final, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from edge.wire import EventState, MetricValue, Scalar, Severity


class DriverConfigBase(BaseModel):
    """Fields every driver config has; subclasses add ``type: Literal[KEY]`` and their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: float = Field(default=10.0, gt=0, le=86_400, description="Seconds between polls of this driver.")
    prefix: str = Field(default="", pattern=r"^([a-z][a-z0-9_]{0,30}_)?$", description="Prefix added to metric names.")


@dataclass(frozen=True, slots=True)
class DriverEvent:
    """An alarm condition a driver detected itself (paper out, tamper, crowd...)."""

    type: str
    state: EventState
    severity: Severity = Severity.MINOR
    message: str | None = None
    value: float | None = None
    zone: str | None = None
    #: JPEG evidence, already privacy-filtered by the driver (camera boxes only).
    snapshot: bytes | None = None
    #: "sent", "pixelated" or "withheld" -- what the privacy filter did.
    snapshot_status: str | None = None
    snapshot_note: str | None = None
    attrs: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sample:
    """What one poll of a driver produced."""

    metrics: Mapping[str, MetricValue]
    events: tuple[DriverEvent, ...] = ()


class Driver(Protocol):
    """A source of readings. ``poll`` is called every ``interval_s`` from a worker thread."""

    def poll(self, now_ms: int) -> Sample:
        """Read the device now; raise :class:`DriverError` when it cannot be read."""
        ...

    def close(self) -> None:
        """Release the device (sockets, captures, files)."""
        ...


class DriverError(RuntimeError):
    """A driver could not read its device; ``retryable`` says whether the next poll may work."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


C = TypeVar("C", bound=DriverConfigBase)


@dataclass(frozen=True, slots=True)
class DriverSpec:
    """A registered driver: its config model and a factory from config to driver."""

    key: str
    config_model: type[DriverConfigBase]
    factory: Callable[[Any], Driver]
    description: str


_REGISTRY: dict[str, DriverSpec] = {}

#: Where each of edge's own driver keys lives, imported on first use (the module registers itself).
BUILTIN_DRIVERS: Final[dict[str, str]] = {
    "system": "edge.drivers.system",
    "modbus": "edge.drivers.modbus",
    "kiosk": "edge.drivers.kiosk",
    "command": "edge.drivers.command",
    "camera": "edge.camera.driver",
}

#: the entry-point group where other packages (the simulators) declare their drivers' modules
DRIVER_GROUP: Final = "gridsentinel.drivers"


def driver_modules() -> dict[str, str]:
    """Every known driver key and the module that registers it: edge's own, then the plug-ins."""
    plugins = {ep.name: ep.value for ep in entry_points(group=DRIVER_GROUP)}
    return {**plugins, **BUILTIN_DRIVERS}


class UnknownDriverError(KeyError):
    """No driver is registered under that ``type``."""


def register_driver(key: str, config_model: type[C], factory: Callable[[C], Driver], description: str) -> None:
    """Register a driver under ``key`` (the value of ``type`` in the agent config)."""
    _REGISTRY[key] = DriverSpec(key, config_model, factory, description)


def get_driver_spec(key: str) -> DriverSpec:
    """Find the driver registered as ``key``, importing its module if needed."""
    modules = driver_modules()
    if key not in _REGISTRY and key in modules:
        try:
            importlib.import_module(modules[key])
        except ImportError as exc:
            raise UnknownDriverError(
                f"driver type {key!r} needs a package that is not installed ({exc.name}); "
                "install the matching extra, e.g. pip install 'gridsentinel[camera]'"
            ) from exc
    try:
        return _REGISTRY[key]
    except KeyError:
        known = ", ".join(sorted(set(modules) | set(_REGISTRY)))
        raise UnknownDriverError(f"unknown driver type {key!r}; known types: {known}") from None


def registered_drivers() -> dict[str, DriverSpec]:
    """Every driver registered so far (import :func:`driver_modules` first to see them all)."""
    return dict(_REGISTRY)
