"""MemoryOutbox: the outbox contract held in process memory (tests, simulated fleets).

It behaves exactly like :class:`~edge.outbox.sqlite.SqliteOutbox` -- same seqs,
bounds, eviction and gap notices -- except that nothing survives the process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from edge import wire
from edge.outbox.base import (
    DEFAULT_COMMAND_MEMORY_MS,
    MAX_REPLAY_ITEMS,
    EvictionLog,
    GapRuns,
    MessageFactory,
    OutboxItem,
    OutboxStats,
    gap_payload,
    is_event_class,
    seq_runs,
)


class MemoryOutbox:
    """An in-memory :class:`~edge.outbox.base.Outbox`."""

    def __init__(
        self,
        max_bytes: int = 64 * 1024 * 1024,
        replay_hours: float = 24.0,
        replay_max_bytes: int = 16 * 1024 * 1024,
        first_seq: int = 1,
    ) -> None:
        self.max_bytes = max_bytes
        self.replay_ms = int(replay_hours * 3600 * 1000)
        self.replay_max_bytes = replay_max_bytes
        self._lock = threading.Lock()
        self._pending: dict[int, OutboxItem] = {}
        self._inflight: set[int] = set()
        self._cursor = 0
        self._sent: dict[int, tuple[OutboxItem, int]] = {}
        self._pending_bytes = 0
        self._sent_bytes = 0
        self._next_seq = first_seq
        self._epoch = 0
        self._evicted = 0
        self._eviction_log = EvictionLog()
        self._gaps = GapRuns()
        self._commands: dict[str, int] = {}

    def begin_session(self) -> int:
        """Increment and return the session epoch."""
        with self._lock:
            self._epoch += 1
            return self._epoch

    @property
    def epoch(self) -> int:
        """The current session epoch."""
        return self._epoch

    def enqueue(self, factories: Sequence[MessageFactory], now_ms: int) -> list[int]:
        """Store messages built with fresh seqs; evict oldest telemetry when over the byte bound."""
        with self._lock:
            seqs: list[int] = []
            lost: list[int] = []
            refused = False
            for factory in factories:
                seq = self._next_seq
                self._next_seq += 1
                message = factory(seq)
                item = OutboxItem(seq, wire.channel_of(message), wire.encode(message), now_ms, is_event_class(message))
                seqs.append(seq)
                if not item.is_event and self._pending_bytes + item.size > self.max_bytes:
                    lost.extend(self._evict(self._pending_bytes + item.size - self.max_bytes))
                    if self._pending_bytes + item.size > self.max_bytes:
                        lost.append(seq)
                        refused = True
                        continue
                self._pending[seq] = item
                self._pending_bytes += item.size
            if lost:
                self._record_gaps(lost, now_ms, refused)
            return seqs

    def _evict(self, need: int) -> list[int]:
        victims: list[int] = []
        freed = 0
        for seq, item in self._pending.items():
            if freed >= need:
                break
            if item.is_event or seq in self._inflight:
                continue
            victims.append(seq)
            freed += item.size
        for seq in victims:
            self._pending_bytes -= self._pending.pop(seq).size
        return victims

    def _record_gaps(self, lost: list[int], now_ms: int, refused: bool) -> None:
        runs = seq_runs(lost)
        self._eviction_log.note(runs, refused)
        self._evicted += len(lost)
        self._gaps.add(runs, now_ms)

    def _materialize_gaps(self) -> None:
        for first, last, ts in self._gaps.take():
            seq = self._next_seq
            self._next_seq += 1
            payload = gap_payload(seq, ts, first, last)
            self._pending[seq] = OutboxItem(seq, wire.Channel.GAP, payload, ts, True)
            self._pending_bytes += len(payload)

    def reserve(self, limit: int) -> list[OutboxItem]:
        """Mark up to ``limit`` pending items in flight, oldest first."""
        with self._lock:
            out = self._next_pending(limit)
            if self._gaps.due(len(out) < limit):
                self._materialize_gaps()
                out = self._next_pending(limit)
            for item in out:
                self._inflight.add(item.seq)
            if out:
                self._cursor = out[-1].seq
            return out

    def _next_pending(self, limit: int) -> list[OutboxItem]:
        out: list[OutboxItem] = []
        for seq, item in self._pending.items():
            if len(out) >= limit:
                break
            if seq > self._cursor and seq not in self._inflight:
                out.append(item)
        return out

    def ack(self, seqs: Iterable[int], now_ms: int) -> None:
        """Move acknowledged in-flight items to the replay window."""
        with self._lock:
            for seq in seqs:
                self._inflight.discard(seq)
                item = self._pending.pop(seq, None)
                if item is None:
                    continue
                self._pending_bytes -= item.size
                self._sent[seq] = (item, now_ms)
                self._sent_bytes += item.size
            self._trim_sent(None)

    def release(self) -> None:
        """Return in-flight items to pending."""
        with self._lock:
            self._inflight.clear()
            self._cursor = 0

    def replay(self, first: int, last: int) -> list[OutboxItem]:
        """Sent items in ``first..last`` still kept."""
        with self._lock:
            items = [item for seq, (item, _) in self._sent.items() if first <= seq <= last]
            return sorted(items, key=lambda i: i.seq)[:MAX_REPLAY_ITEMS]

    def _trim_sent(self, now_ms: int | None) -> int:
        dropped = []
        for seq, (item, sent_ms) in self._sent.items():
            too_old = now_ms is not None and sent_ms < now_ms - self.replay_ms
            if not too_old and self._sent_bytes <= self.replay_max_bytes:
                break
            dropped.append(seq)
            self._sent_bytes -= item.size
        for seq in dropped:
            del self._sent[seq]
        return len(dropped)

    def prune(self, now_ms: int) -> int:
        """Drop sent items outside the replay window."""
        with self._lock:
            return self._trim_sent(now_ms)

    def remember_command(self, command_id: str, now_ms: int) -> bool:
        """Record ``command_id``; False if it was seen within the last day."""
        with self._lock:
            cutoff = now_ms - DEFAULT_COMMAND_MEMORY_MS
            for old in [k for k, ts in self._commands.items() if ts < cutoff]:
                del self._commands[old]
            if command_id in self._commands:
                return False
            self._commands[command_id] = now_ms
            return True

    def stats(self) -> OutboxStats:
        """Current counters."""
        with self._lock:
            return OutboxStats(
                pending=len(self._pending),
                pending_bytes=self._pending_bytes,
                inflight=len(self._inflight),
                sent=len(self._sent),
                sent_bytes=self._sent_bytes,
                evicted_total=self._evicted,
                last_seq=self._next_seq - 1,
                epoch=self._epoch,
            )

    def close(self) -> None:
        """Nothing to release."""
