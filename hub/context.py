"""The hub's shared context, and how subsystems plug into it.

A subsystem (incidents, cases, snapshots, ...) is a module with
``install(ctx: HubContext) -> None`` listed in :data:`PLUGINS`. At start-up the
hub builds one :class:`HubContext` and calls each ``install``, which may:

- ``ctx.add_sink(sink)``: receive every accepted message (see :mod:`hub.ingest.sinks`);
- ``ctx.add_router(router)``: mount a FastAPI ``APIRouter``; routes reach the
  context through ``request.app.state.ctx``;
- ``ctx.add_task(name, fn)``: run ``fn(stop_event)`` on its own thread until the
  hub stops (SLA sweeps, webhook delivery, retention);
- ``ctx.services[name] = obj``: offer a service to other subsystems;
- ``ctx.bus.publish(kind, data)``: push a live change to dashboards (SSE).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from edge.wire import DEFAULT_ROOT, Command
from hub.bus import EventBus
from hub.ingest.sinks import DeviceRef, MessageSink

if TYPE_CHECKING:
    from fastapi import APIRouter
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

#: Subsystem modules with ``install(ctx)``, in start-up order.
PLUGINS: Final[tuple[str, ...]] = (
    "hub.incidents.plugin",
    "hub.cases.plugin",
    "hub.evidence.snapshots",
    "hub.commands.plugin",
    "hub.levels.plugin",
    "hub.cameras.plugin",
)

Task = Callable[[threading.Event], None]


def _no_commands(device: DeviceRef, command: Command) -> None:
    raise RuntimeError(f"no MQTT connection to send {command.op!r} to {device.device_id}")


@dataclass
class HubContext:
    """Everything a subsystem may use; built once per hub process."""

    data_dir: Path
    engine: Engine
    sessions: sessionmaker[Session]
    root: str = DEFAULT_ROOT
    demo: bool = False
    bus: EventBus = field(default_factory=EventBus)
    sinks: list[MessageSink] = field(default_factory=list)
    routers: list[APIRouter] = field(default_factory=list)
    tasks: list[tuple[str, Task]] = field(default_factory=list)
    services: dict[str, Any] = field(default_factory=dict)
    #: Sends a command to a device over MQTT; replaced by ingest once connected.
    send_command: Callable[[DeviceRef, Command], None] = _no_commands
    #: Wall clock in seconds; tests swap in a fake clock.
    clock: Callable[[], float] = time.time

    def add_sink(self, sink: MessageSink) -> None:
        """Receive every accepted message after it is stored."""
        self.sinks.append(sink)

    def add_router(self, router: APIRouter) -> None:
        """Mount a FastAPI router on the hub's app."""
        self.routers.append(router)

    def add_task(self, name: str, fn: Task) -> None:
        """Run ``fn(stop_event)`` on a thread for the hub's lifetime; it must return once the event is set."""
        self.tasks.append((name, fn))

    def now_ms(self) -> int:
        """The context clock in integer milliseconds."""
        return int(self.clock() * 1000)
