"""The dead letter: messages the hub could not accept, kept for inspection, requeue and purge.

Ingest calls :meth:`DeadLetterStore.add` on its hot thread; that only appends to
a bounded in-memory queue. :meth:`DeadLetterStore.flush` (a hub task, and every
read) writes the queue to the state DB and purges the oldest rows beyond the
cap, counting them, so a flood of bad messages can neither stall ingest nor
fill the disk.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.ingest.models import DeadLetterRow
from hub.metrics import IngestStats

logger = logging.getLogger(__name__)

#: Raw payload bytes kept per dead letter; longer payloads are truncated (and cannot be requeued).
MAX_PAYLOAD_COPY: Final = 64 * 1024
DEFAULT_CAP: Final = 10_000
MAX_PENDING: Final = 10_000

Processor = Callable[[str, bytes, int], None]


class DeadLetterError(LookupError):
    """A dead letter cannot be found or requeued; ``code`` is ``not_found`` or ``not_requeueable``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message waiting to be written."""

    topic: str
    payload: bytes
    payload_size: int
    truncated: bool
    reason: str
    detail: str
    received_ms: int
    device_id: str | None
    source: str


class DeadLetterStore:
    """Bounded, persistent dead letter with list / inspect / requeue / purge."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        stats: IngestStats,
        *,
        cap: int = DEFAULT_CAP,
        max_pending: int = MAX_PENDING,
        payload_copy: int = MAX_PAYLOAD_COPY,
    ) -> None:
        self.sessions = sessions
        self.stats = stats
        self.cap = cap
        self.payload_copy = payload_copy
        self._pending: deque[DeadLetter] = deque()
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def add(
        self,
        topic: str,
        payload: bytes,
        reason: str,
        detail: str,
        received_ms: int,
        *,
        device_id: str | None = None,
        source: str = "mqtt",
    ) -> None:
        """Queue a refused message (cheap; safe from any thread)."""
        self.stats.dead_letters[reason] += 1
        item = DeadLetter(
            topic=topic[:512],
            payload=bytes(payload[: self.payload_copy]),
            payload_size=len(payload),
            truncated=len(payload) > self.payload_copy,
            reason=reason[:64],
            detail=detail[:2000],
            received_ms=received_ms,
            device_id=device_id,
            source=source,
        )
        with self._lock:
            if len(self._pending) >= self._max_pending:
                self.stats.deadletters_dropped += 1
                return
            self._pending.append(item)

    def flush(self) -> int:
        """Write queued dead letters and enforce the cap; return how many were written."""
        with self._flush_lock:
            with self._lock:
                items = list(self._pending)
                self._pending.clear()
            if not items:
                return 0
            try:
                self._write(items)
            except Exception:
                self._requeue(items)
                raise
            return len(items)

    def _requeue(self, items: list[DeadLetter]) -> None:
        """Put unwritten dead letters back in front, in order, within the pending bound."""
        with self._lock:
            room = self._max_pending - len(self._pending)
            kept = items[: max(room, 0)]
            if len(items) > len(kept):
                self.stats.deadletters_dropped += len(items) - len(kept)
                logger.error(
                    "dead letter: %d refused messages dropped (state DB down, queue full)", len(items) - len(kept)
                )
            self._pending.extendleft(reversed(kept))

    def _write(self, items: list[DeadLetter]) -> None:
        """Insert the dead letters and purge the oldest rows beyond the cap, in one transaction."""
        purged = 0
        with self.sessions.begin() as session:
            session.add_all(
                DeadLetterRow(
                    topic=i.topic,
                    device_id=i.device_id,
                    payload=i.payload,
                    payload_size=i.payload_size,
                    truncated=i.truncated,
                    reason=i.reason,
                    detail=i.detail,
                    source=i.source,
                    received_ms=i.received_ms,
                )
                for i in items
            )
            session.flush()
            total = session.scalar(select(func.count(DeadLetterRow.id))) or 0
            excess = total - self.cap
            if excess > 0:
                cutoff = session.scalar(select(DeadLetterRow.id).order_by(DeadLetterRow.id).offset(excess - 1))
                if cutoff is not None:
                    session.execute(delete(DeadLetterRow).where(DeadLetterRow.id <= cutoff))
                    purged = excess
        self.stats.deadletters_purged += purged

    def list_page(
        self,
        *,
        reason: str | None = None,
        device: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[DeadLetterRow]]:
        """(total matching, one page newest first) after flushing the queue."""
        self.flush()
        conds: list[Any] = []
        if reason is not None:
            conds.append(DeadLetterRow.reason == reason)
        if device is not None:
            conds.append(DeadLetterRow.device_id == device)
        if since_ms is not None:
            conds.append(DeadLetterRow.received_ms >= since_ms)
        if until_ms is not None:
            conds.append(DeadLetterRow.received_ms < until_ms)
        with self.sessions() as session:
            total = session.scalar(select(func.count(DeadLetterRow.id)).where(*conds)) or 0
            rows = session.scalars(
                select(DeadLetterRow).where(*conds).order_by(DeadLetterRow.id.desc()).limit(limit).offset(offset)
            ).all()
        return total, list(rows)

    def get(self, dead_letter_id: int) -> DeadLetterRow:
        """One dead letter; raise :class:`DeadLetterError` if there is none with that id."""
        self.flush()
        with self.sessions() as session:
            row = session.get(DeadLetterRow, dead_letter_id)
        if row is None:
            raise DeadLetterError("not_found", f"no dead letter with id {dead_letter_id}")
        return row

    def requeue(self, dead_letter_id: int, process: Processor, now_ms: int, payload: bytes | None = None) -> None:
        """Re-inject the stored (or a corrected) payload through ``process``; delete the row if it is accepted.

        ``process`` raises (a :class:`edge.wire.WireError`) when the message is still refused;
        the dead letter then stays where it is.
        """
        row = self.get(dead_letter_id)
        if row.source != "mqtt":
            raise DeadLetterError("not_requeueable", f"dead letter {row.id} came from {row.source}, not MQTT")
        if payload is None:
            if row.truncated:
                raise DeadLetterError(
                    "not_requeueable",
                    f"dead letter {row.id} kept only {len(row.payload)} of {row.payload_size} bytes; "
                    "give a corrected payload to requeue it",
                )
            payload = row.payload
        process(row.topic, payload, now_ms)
        with self.sessions.begin() as session:
            session.execute(delete(DeadLetterRow).where(DeadLetterRow.id == row.id))
        logger.info("dead letter %s requeued on %s", row.id, row.topic)

    def purge(self, *, reason: str | None = None, before_ms: int | None = None) -> int:
        """Delete dead letters (all, or by reason / older than ``before_ms``); return how many."""
        self.flush()
        conds: list[Any] = []
        if reason is not None:
            conds.append(DeadLetterRow.reason == reason)
        if before_ms is not None:
            conds.append(DeadLetterRow.received_ms < before_ms)
        with self.sessions.begin() as session:
            result = session.execute(delete(DeadLetterRow).where(*conds))
        count: int = getattr(result, "rowcount", 0) or 0
        return count
