"""What the ingest pipeline hands on after a message is decoded, deduplicated and stored.

Rules/incidents, snapshots and the live stream implement :class:`MessageSink` and
are registered on the hub; the ingest loop calls them in order for every
accepted message. A sink must be quick (it runs on the ingest thread) and must
not raise: ingest logs and counts any exception and carries on.

Three optional methods are called only on sinks that define them (ingest looks
them up with ``getattr``, once), so a sink implements only those it uses:

- ``on_telemetry(device, msg: Telemetry, received_ms)``: telemetry was accepted
  (not a duplicate). It runs for every telemetry message, the bulk of the traffic:
  a sink that has nothing to do with readings leaves it out rather than defining
  an empty one (three empty ones cost the ingest thread ~1 of ~25 CPU-us per
  10-point message);
- ``on_snapshot(device, event_id, payload: bytes, sha256: str, received_ms)``: a
  redacted evidence image arrived on the ``snapshot/{event_id}`` channel;
- ``on_ack(device, ack: CommandAck, received_ms)``: a device answered a command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from edge.wire import DeviceKind, Event, Status


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """Who sent a message, as the registry knows the device."""

    device_id: str
    site: str
    kind: DeviceKind | None
    grid: str | None
    labels: Mapping[str, str] = field(default_factory=dict)


class MessageSink(Protocol):
    """Receives accepted messages from ingest, in per-device order."""

    def on_status(self, device: DeviceRef, status: Status, received_ms: int) -> None:
        """A status (birth, LWT, graceful offline) was accepted."""
        ...

    def on_event(self, device: DeviceRef, msg: Event, received_ms: int) -> None:
        """A device event was accepted (not a duplicate)."""
        ...

    def on_health(self, device: DeviceRef, old: str, new: str, at_ms: int) -> None:
        """The device's combined health state changed (online/stale/offline...)."""
        ...
