"""Live-stream fan-out across replicas: each replica's bus changes go out on NATS, the others' come in.

A replica publishes every change of its own event bus (incidents, cases, device health, data loss...)
on ``gs.hub.live.<replica id>`` and hands the changes of the other replicas to its live-view
subscribers only (:meth:`hub.bus.EventBus.publish_remote`): an operator page connected to any replica
sees the whole district, while listeners that act on changes (the data-loss listener raising
incidents) see only their own replica's, so nothing is acted on twice. Core NATS, at most once: a
live view that misses a change reloads from the API, as it does after a reconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Final

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from hub.bus import EventBus

logger = logging.getLogger(__name__)

#: Subject prefix of the replicas' live changes.
LIVE_PREFIX: Final = "gs.hub.live"
#: Bus kinds that are the process's own business (never relayed).
LOCAL_KINDS: Final = frozenset({"shutdown"})


class LiveRelay:
    """Relays one replica's bus to the others and theirs to its live views, over ``nc`` on ``loop``."""

    def __init__(self, bus: EventBus, nc: NatsClient, loop: asyncio.AbstractEventLoop, replica_id: str) -> None:
        self.bus = bus
        self.nc = nc
        self.loop = loop
        self.replica_id = replica_id
        self.sent = 0
        self.received = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sub: NatsSubscription | None = None

    async def start(self) -> None:
        """Subscribe to the other replicas and start relaying this one's changes (call on ``loop``)."""
        self._sub = await self.nc.subscribe(f"{LIVE_PREFIX}.*", cb=self._on_remote)
        self._thread = threading.Thread(target=self._relay, name="hub-live-relay", daemon=True)
        self._thread.start()

    async def _on_remote(self, msg: Msg) -> None:
        if msg.subject == f"{LIVE_PREFIX}.{self.replica_id}":
            return
        try:
            body = json.loads(msg.data)
            self.bus.publish_remote(str(body["kind"]), dict(body["data"]))
            self.received += 1
        except (ValueError, KeyError, TypeError):
            logger.warning("unreadable live change on %s", msg.subject)

    def _relay(self) -> None:
        sub = self.bus.subscribe(maxlen=10_000)
        subject = f"{LIVE_PREFIX}.{self.replica_id}"
        try:
            while not self._stop.is_set():
                for event in sub.get(0.5):
                    if event.kind in LOCAL_KINDS:
                        continue
                    data = json.dumps({"kind": event.kind, "data": event.data}, default=str).encode()
                    try:
                        asyncio.run_coroutine_threadsafe(self.nc.publish(subject, data), self.loop).result(5)
                        self.sent += 1
                    except Exception as exc:  # loop boundary: a live change is at most once
                        logger.debug("live change not relayed: %s", exc)
        finally:
            self.bus.unsubscribe(sub)

    def stop(self) -> None:
        """Stop relaying (the NATS subscription ends with the connection)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
