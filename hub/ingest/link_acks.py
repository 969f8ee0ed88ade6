"""When :class:`~hub.ingest.link.MqttLink` may acknowledge what it received: after ``before_ack``, after ``released``.

The link appends each acknowledgement it owes the broker (PUBACK; for inbound QoS 2,
PUBREC and PUBCOMP) to :attr:`AckQueue.pending` as it handles a chunk. :meth:`AckQueue.flush`
first lets the handler make what it was given safe (``before_ack``, which may return a
ticket), then either hands the acknowledgements back to be written at once or, with
``released``, holds them until ``released()`` (e.g. the series writer's
``durable_through``) reaches their ticket. Held acknowledgements go out in the order the
PUBLISHes came (MQTT 3.1.1 section 4.6); those still held when the connection ends are
never sent, so the broker delivers those messages again.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from hub.ingest.link_socket import LinkDown

logger = logging.getLogger(__name__)

#: How often held acknowledgements are re-checked without a wake-up.
RELEASE_POLL_S: Final = 0.05


class AckQueue:
    """The acknowledgements one link owes the broker; used by the link's I/O thread only."""

    __slots__ = ("before_ack", "delivered", "held", "name", "pending", "release_due", "released", "released_at")

    def __init__(
        self, name: str, before_ack: Callable[[], int | None] | None, released: Callable[[], int] | None
    ) -> None:
        self.name = name
        self.before_ack = before_ack
        self.released = released
        #: Acknowledgement frames of the chunk being handled, in arrival order.
        self.pending: list[bytes] = []
        #: Messages handed to on_message since before_ack last ran (the link counts them).
        self.delivered = 0
        #: Acknowledgement bytes waiting for their ticket to be released: (ticket, packets, frames), in order.
        self.held: deque[tuple[int, int, bytes]] = deque()
        #: released() is asked again only after wake() or RELEASE_POLL_S: asking per 64 packets took the
        #: writer's lock 400 times a second at 25k msgs/s, for answers that change once per batch.
        self.release_due = True
        self.released_at = 0.0

    @property
    def held_count(self) -> int:
        """Acknowledgements waiting for ``released`` (a snapshot, safe from any thread)."""
        return sum(count for _, count, _ in tuple(self.held))

    def clear(self) -> None:
        """The connection ended: what is pending or held is never sent."""
        self.pending.clear()
        self.held.clear()

    def flush(self) -> tuple[bytes, int]:
        """Make what was delivered safe, then return the acknowledgements to write now and how many."""
        ticket = None
        if self.delivered and self.before_ack is not None:
            # The handler may batch its work per chunk: it makes what it was given safe before we acknowledge.
            self.delivered = 0
            try:
                ticket = self.before_ack()
            except Exception as exc:
                # Not safe, so not acknowledged: drop the connection and the broker delivers them again.
                logger.exception("%s: before_ack failed; not acknowledging", self.name)
                self.pending.clear()
                raise LinkDown(f"handler could not keep what it received: {exc!r}") from exc
        pending = self.pending
        held = self.held
        if pending:
            if self.released is None:
                count = len(pending)
                data = b"".join(pending)
                pending.clear()
                return data, count
            # Behind the held ones. Without a ticket they wait for nothing else (released() still sees them).
            wait_for = 0 if ticket is None else ticket
            if held and wait_for < held[-1][0]:
                wait_for = held[-1][0]
            held.append((wait_for, len(pending), b"".join(pending)))
            pending.clear()
        if held and (self.release_due or time.monotonic() - self.released_at >= RELEASE_POLL_S):
            return self.release()
        return b"", 0

    def release(self) -> tuple[bytes, int]:
        """The held acknowledgements whose ticket ``released()`` has reached, and how many."""
        assert self.released is not None
        held = self.held
        self.release_due = False  # before asking: a wake() from now on asks again
        self.released_at = time.monotonic()
        try:
            through = self.released()
        except Exception as exc:
            logger.exception("%s: released() failed; not acknowledging", self.name)
            raise LinkDown(f"cannot tell what is safe: {exc!r}") from exc
        frames: list[bytes] = []
        count = 0
        while held and held[0][0] <= through:
            _, packets, data = held.popleft()
            frames.append(data)
            count += packets
        return b"".join(frames), count
