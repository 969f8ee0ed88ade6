"""``install(ctx)``: operator commands plug into the hub (service, ack sink, API, sweep task)."""

from __future__ import annotations

import logging
import threading
from typing import Final

from edge.wire import CommandAck, Event, Status
from hub.commands.api import device_ref, router
from hub.commands.service import DEFAULT_ACK_MARGIN_S, CommandService, Sender
from hub.context import HubContext
from hub.devices.registry import DeviceRegistry
from hub.evidence.access_log import AccessLog
from hub.incidents.service import IncidentService
from hub.ingest.sinks import DeviceRef

logger = logging.getLogger(__name__)

#: Seconds between sweeps (publish queued, expire unsent, time out unanswered).
SWEEP_INTERVAL_S: Final = 0.5


class CommandAckSink:
    """Hub sink: hands each ``cmd/ack`` to the command service (the ingest thread calls it)."""

    def __init__(self, service: CommandService) -> None:
        self.service = service

    def on_status(self, device: DeviceRef, status: Status, received_ms: int) -> None:
        """Not used."""

    def on_event(self, device: DeviceRef, msg: Event, received_ms: int) -> None:
        """Not used."""

    def on_health(self, device: DeviceRef, old: str, new: str, at_ms: int) -> None:
        """Not used."""

    def on_ack(self, device: DeviceRef, ack: CommandAck, received_ms: int) -> None:
        """Correlate the ack with its command."""
        self.service.on_ack(device, ack, received_ms)


def install(ctx: HubContext) -> None:
    """Plug device commands into the hub."""
    settings = ctx.services.settings
    margin = float(getattr(settings, "command_ack_margin_s", DEFAULT_ACK_MARGIN_S))
    if ctx.services.access_log is None:
        ctx.services.access_log = AccessLog(ctx.engine, ctx.sessions, ctx.clock)

    def sender() -> Sender:
        return ctx.send_command

    def incidents() -> IncidentService | None:
        service = ctx.services.incidents
        return service if isinstance(service, IncidentService) else None

    service = CommandService(
        ctx.sessions,
        sender,
        bus=ctx.bus,
        audit=lambda: ctx.services.access_log,
        incidents=lambda: None if (s := incidents()) is None else s.apply,
        clock=ctx.clock,
        ack_margin_s=margin,
    )
    ctx.services.commands = service
    ctx.add_sink(CommandAckSink(service))
    ctx.add_router(router)

    def lookup(device_id: str) -> DeviceRef | None:
        registry = ctx.services.registry
        device = registry.get_public(device_id) if isinstance(registry, DeviceRegistry) else None
        return None if device is None else device_ref(device)

    def sweep(stop: threading.Event) -> None:
        while not stop.wait(SWEEP_INTERVAL_S):
            try:
                service.sweep(ctx.now_ms(), lookup)
            except Exception:  # loop boundary: the next pass retries
                logger.exception("command sweep failed")

    ctx.add_task("commands-sweep", sweep)
