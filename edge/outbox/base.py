"""The outbox seam: a bounded, ordered store-and-forward buffer with begin/commit delivery.

Lifecycle of an item: ``enqueue`` assigns the next per-device ``seq`` and stores
the encoded payload in one transaction (pending); ``reserve`` hands pending items
to the publisher (in flight, remembered in memory only, so a restart or
``release`` puts them back to pending); ``ack`` -- called only on a broker PUBACK
-- moves them to sent, where they stay for the replay window (bounded by hours
and bytes) so the hub can ask for a resend. When unsent bytes exceed the bound,
the oldest pending telemetry is evicted; events (and gap notices and command
acks) never are. Every eviction becomes a :class:`~edge.wire.GapNotice` item.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from edge import wire

logger = logging.getLogger(__name__)

#: Builds the message for a seq the outbox assigns inside its transaction.
MessageFactory = Callable[[int], wire.SequencedMessage]

DEFAULT_COMMAND_MEMORY_MS = 24 * 3600 * 1000
MAX_REPLAY_ITEMS = 10_000
#: Evictions are reported at the latest this long after the first one, even under sustained load.
GAP_HOLD_S = 10.0
EVICTION_LOG_EVERY_S = 10.0


class OutboxError(RuntimeError):
    """The outbox storage failed (disk full, corrupt file...)."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One stored message: its seq, channel, encoded payload and enqueue time (ms)."""

    seq: int
    channel: wire.Channel
    payload: bytes
    created_ms: int
    is_event: bool

    @property
    def size(self) -> int:
        """Payload size in bytes (what the byte bounds count)."""
        return len(self.payload)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters for status output and logs."""

    pending: int
    pending_bytes: int
    inflight: int
    sent: int
    sent_bytes: int
    evicted_total: int
    last_seq: int
    epoch: int


class Outbox(Protocol):
    """A bounded store-and-forward buffer (see the module docstring)."""

    def begin_session(self) -> int:
        """Increment and return the persisted session epoch (once per agent start)."""
        ...

    @property
    def epoch(self) -> int:
        """The current session epoch."""
        ...

    def enqueue(self, factories: Sequence[MessageFactory], now_ms: int) -> list[int]:
        """Store messages built with fresh seqs in one transaction; return the seqs."""
        ...

    def reserve(self, limit: int) -> list[OutboxItem]:
        """Mark up to ``limit`` pending items in flight, oldest first, and return them."""
        ...

    def ack(self, seqs: Iterable[int], now_ms: int) -> None:
        """Move in-flight items to sent (the broker acknowledged them)."""
        ...

    def release(self) -> None:
        """Return every in-flight item to pending (connection lost)."""
        ...

    def replay(self, first: int, last: int) -> list[OutboxItem]:
        """Sent items with ``first <= seq <= last`` still in the replay window."""
        ...

    def prune(self, now_ms: int) -> int:
        """Drop sent items outside the replay window; return how many were dropped."""
        ...

    def remember_command(self, command_id: str, now_ms: int) -> bool:
        """Record a command id; False when it was already seen (run each id at most once)."""
        ...

    def stats(self) -> OutboxStats:
        """Current counters."""
        ...

    def close(self) -> None:
        """Release the storage."""
        ...


def is_event_class(message: wire.SequencedMessage) -> bool:
    """Everything but telemetry is event class: never evicted, stored with a full sync."""
    return not isinstance(message, wire.Telemetry)


def seq_runs(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Collapse seqs into inclusive runs of consecutive integers."""
    runs: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def gap_payload(seq: int, ts: int, first: int, last: int) -> bytes:
    """Encoded gap notice for evicted telemetry ``first..last``."""
    return wire.encode(wire.GapNotice(seq=seq, ts=ts, first=first, last=last, reason="evicted"))


class GapRuns:
    """Evicted seq ranges not yet reported; consecutive evictions merge into one range.

    Ranges become gap notices only when the publisher next reserves items and has
    room (or they are older than :data:`GAP_HOLD_S`), so a long outage with the
    outbox full yields a handful of notices, not one per evicted message.
    """

    def __init__(self, ranges: Iterable[tuple[int, int, int]] = ()) -> None:
        self.ranges: list[tuple[int, int, int]] = list(ranges)  # (first, last, ts of first eviction)
        self.since = time.monotonic()

    def add(self, runs: Sequence[tuple[int, int]], ts: int) -> None:
        """Record evicted runs, extending the last range when they directly follow it."""
        if not self.ranges:
            self.since = time.monotonic()
        for first, last in runs:
            if self.ranges and first == self.ranges[-1][1] + 1:
                self.ranges[-1] = (self.ranges[-1][0], last, self.ranges[-1][2])
            else:
                self.ranges.append((first, last, ts))

    def due(self, has_room: bool) -> bool:
        """True when open ranges should become gap notices now."""
        return bool(self.ranges) and (has_room or time.monotonic() - self.since > GAP_HOLD_S)

    def take(self) -> list[tuple[int, int, int]]:
        """Remove and return the open ranges."""
        out, self.ranges = self.ranges, []
        return out


class EvictionLog:
    """Logs evictions loudly but at most every :data:`EVICTION_LOG_EVERY_S` (the first one at once)."""

    def __init__(self) -> None:
        self._last = -EVICTION_LOG_EVERY_S
        self._count = 0
        self._refused = 0

    def note(self, runs: Sequence[tuple[int, int]], refused: bool) -> None:
        """Count evicted (or refused) runs; log a summary when due."""
        count = sum(last - first + 1 for first, last in runs)
        self._count += count
        if refused:
            self._refused += count
        now = time.monotonic()
        if now - self._last < EVICTION_LOG_EVERY_S:
            return
        self._last = now
        if self._refused:
            logger.error(
                "outbox full of events: %d new telemetry message(s) refused, %d evicted in total since last report "
                "(latest %s); events are kept and the loss is reported as gap notices",
                self._refused,
                self._count,
                list(runs),
            )
        else:
            logger.warning(
                "outbox full: evicted %d oldest telemetry message(s) since last report (latest %s); "
                "reported to the hub as gap notices",
                self._count,
                list(runs),
            )
        self._count = self._refused = 0
