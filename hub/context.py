"""The hub's shared context, and how subsystems plug into it.

A subsystem (incidents, cases, snapshots, ...) is a module with
``install(ctx: HubContext) -> None`` listed in :data:`PLUGINS`. At start-up the
hub builds one :class:`HubContext` and calls each ``install``, which may:

- ``ctx.add_sink(sink)``: receive every accepted message (see :mod:`hub.ingest.sinks`);
- ``ctx.add_router(router)``: mount a FastAPI ``APIRouter``; routes reach the
  context through ``request.app.state.ctx``;
- ``ctx.add_task(name, fn)``: run ``fn(stop_event)`` on its own thread until the
  hub stops (SLA sweeps, webhook delivery, retention);
- ``ctx.services.<name> = obj``: offer a service to other subsystems (:class:`Services` names
  every one with its type, so a reader and mypy see who offers what);
- ``ctx.bus.publish(kind, data)``: push a live change to dashboards (SSE).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from edge.wire import DEFAULT_ROOT, Command
from hub.bus import EventBus
from hub.ingest.sinks import DeviceRef, MessageSink

if TYPE_CHECKING:
    from fastapi import APIRouter
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from hub.cameras.board import CameraBoard
    from hub.cases.media import PhotoStore
    from hub.cases.open311_view import PublicPolicy
    from hub.cases.series import CaseStatsWriter
    from hub.cases.service import CaseService
    from hub.cases.webhooks import WebhookDispatcher
    from hub.commands.service import CommandService
    from hub.config import HubSettings
    from hub.devices.registry import DeviceRegistry
    from hub.evidence.access_log import AccessLog
    from hub.evidence.blobs import SnapshotBlobs
    from hub.evidence.snapshots import SnapshotStore
    from hub.incidents.queries import IncidentQueries
    from hub.incidents.rulestore import RuleStore
    from hub.incidents.service import IncidentService
    from hub.incidents.sink import IncidentSink
    from hub.ingest.deadletter import DeadLetterStore
    from hub.ingest.gaps import GapManager
    from hub.ingest.outage import OutageLog
    from hub.ingest.pipeline import Ingest
    from hub.metrics import HubMetrics, IngestStats
    from hub.security.auth import TokenStore
    from hub.series.base import PointWriter, SeriesStore

#: Subsystem modules with ``install(ctx)``, in start-up order.
PLUGINS: Final[tuple[str, ...]] = (
    "hub.incidents.plugin",
    "hub.cases.plugin",
    "hub.evidence.plugin",
    "hub.commands.plugin",
    "hub.levels.plugin",
    "hub.cameras.plugin",
)

Task = Callable[[threading.Event], None]
T = TypeVar("T")


def _no_commands(device: DeviceRef, command: Command) -> None:
    raise RuntimeError(f"no MQTT connection to send {command.op!r} to {device.device_id}")


@dataclass
class Services:
    """What the subsystems offer each other, by name and type. A service a hub does not run (a test's
    context, a hub without the camera extra) is None; who needs one checks, or says so with
    :func:`need`."""

    # the hub itself (hub/service.py)
    settings: HubSettings | None = None
    registry: DeviceRegistry | None = None
    deadletters: DeadLetterStore | None = None
    gaps: GapManager | None = None
    ingest: Ingest | None = None
    store: SeriesStore | None = None
    writer: PointWriter | None = None
    metrics: HubMetrics | None = None
    stats: IngestStats | None = None
    state_db: OutageLog | None = None
    stopping: threading.Event | None = None
    tokens: TokenStore | None = None
    # incidents
    incidents: IncidentService | None = None
    incident_queries: IncidentQueries | None = None
    incident_sink: IncidentSink | None = None
    rules: RuleStore | None = None
    # cases
    cases: CaseService | None = None
    case_stats: CaseStatsWriter | None = None
    case_webhooks: WebhookDispatcher | None = None
    resident_photos: PhotoStore | None = None
    open311: PublicPolicy | None = None
    # evidence, commands, cameras
    snapshots: SnapshotStore | None = None
    #: Where snapshot bytes go when not to the data dir's files (a cluster replica: the shared object store).
    snapshot_blobs: SnapshotBlobs | None = None
    access_log: AccessLog | None = None
    commands: CommandService | None = None
    camera_board: CameraBoard | None = None


def need(service: T | None, name: str) -> T:
    """``service``, which this code path cannot do without; a clear error when the hub has none."""
    if service is None:
        raise LookupError(f"this hub runs no {name} service")
    return service


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
    services: Services = field(default_factory=Services)
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
