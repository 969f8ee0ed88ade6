"""In-process fan-out of live changes (incidents, cases, device health) to SSE clients.

Publishers call :meth:`EventBus.publish` from any thread; each subscriber gets its
own bounded queue. A slow subscriber loses its oldest items (and is told how many
via a ``dropped`` count) rather than blocking the publisher.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One live change: ``kind`` such as ``incident``, ``case``, ``device``; ``data`` is JSON-ready."""

    id: int
    kind: str
    data: dict[str, Any]
    ts: float


@dataclass
class Subscription:
    """A subscriber's queue; read with :meth:`get`."""

    maxlen: int = 1000
    items: deque[BusEvent] = field(default_factory=deque)
    dropped: int = 0
    #: Also gets other hub replicas' changes (:meth:`EventBus.publish_remote`): for live views, not for
    #: listeners that act on changes (they would act on another replica's work a second time).
    remote: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def put(self, event: BusEvent) -> None:
        """Append, dropping the oldest item when full."""
        with self.cond:
            if len(self.items) >= self.maxlen:
                self.items.popleft()
                self.dropped += 1
            self.items.append(event)
            self.cond.notify_all()

    def get(self, timeout: float) -> list[BusEvent]:
        """Everything queued, waiting up to ``timeout`` seconds for the first item."""
        with self.cond:
            if not self.items:
                self.cond.wait(timeout)
            out = list(self.items)
            self.items.clear()
            return out


class EventBus:
    """Thread-safe publish/subscribe for live changes, with a short history for late joiners."""

    def __init__(self, history: int = 200) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._ids = itertools.count(1)
        self.history: deque[BusEvent] = deque(maxlen=history)

    def publish(self, kind: str, data: dict[str, Any]) -> BusEvent:
        """Send ``data`` to every subscriber."""
        with self._lock:
            event = BusEvent(next(self._ids), kind, data, time.time())
            self.history.append(event)
            subs = list(self._subs)
        for sub in subs:
            sub.put(event)
        return event

    def publish_remote(self, kind: str, data: dict[str, Any]) -> BusEvent:
        """Send another replica's change to the subscribers that asked for remote changes only."""
        with self._lock:
            event = BusEvent(next(self._ids), kind, data, time.time())
            subs = [s for s in self._subs if s.remote]
        for sub in subs:
            sub.put(event)
        return event

    def subscribe(self, maxlen: int = 1000, *, remote: bool = False) -> Subscription:
        """A new subscription (``remote``: with other replicas' changes); call :meth:`unsubscribe` when done."""
        sub = Subscription(maxlen=maxlen, remote=remote)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub``."""
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
