"""How a hub replica joins a district cluster: its NATS servers, its id, the partitions and replication."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from hub.cluster.natsconf import DEFAULT_PREFIX, PartitionKey
from hub.config import HubSettings
from hub.context import HubContext
from hub.devices.registry import DeviceRegistry
from hub.ingest.deadletter import DeadLetterStore
from hub.ingest.gaps import GapManager
from hub.ingest.pipeline import Ingest


class ClusterHost(Protocol):
    """What a replica uses of the hub it runs in (:class:`hub.service.Hub` is one; naming the Protocol
    instead of the class keeps the cluster below the service that starts it)."""

    settings: HubSettings
    ctx: HubContext | None
    ingest: Ingest | None
    writer: Any
    registry: DeviceRegistry | None
    deadletters: DeadLetterStore | None
    gaps: GapManager | None


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """How a replica joins the cluster."""

    servers: tuple[str, ...]
    replica_id: str
    partitions: int = 12
    stream_replicas: int = 3
    lease_ttl_s: float = 4.0
    key: PartitionKey = "site-device"
    prefix: str = DEFAULT_PREFIX

    @staticmethod
    def parse_servers(url: str) -> tuple[str, ...]:
        """``nats://a:4222,nats://b:4222`` (or with bare host:port) as a tuple of URLs."""
        out = []
        for raw in url.split(","):
            part = raw.strip()
            if part:
                out.append(part if "://" in part else f"nats://{part}")
        if not out:
            raise ValueError("no NATS server in the cluster URL")
        return tuple(out)
