"""Gap handling around :mod:`hub.ingest.dedup`: resend requests, and data-loss records when a gap cannot be filled.

A gap older than ``grace`` gets one ``resend`` command to the device; a gap still
open after ``timeout`` becomes a **data-loss record** (persisted, listed at
``GET /api/v1/gaps``, counted in metrics and published on the bus as kind
``data_loss``). A :class:`~edge.wire.GapNotice` from the device closes the seqs
it names at once as declared loss. Loss is never silent.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from edge.wire import Command, CommandOp, GapNotice
from hub.bus import EventBus
from hub.devices.models import DataLossRow, OpenGapRow
from hub.devices.registry import DeviceRecord
from hub.ingest.dedup import ACCEPTED, Gap, SeqTracker, Verdict
from hub.ingest.sinks import DeviceRef
from hub.metrics import IngestStats

logger = logging.getLogger(__name__)

CommandSender = Callable[[DeviceRef, Command], None]
#: Declared losses remembered (this run's and the latest of earlier runs) to spot a redelivered notice.
DECLARED_REMEMBERED: Final = 10_000


@dataclass(frozen=True, slots=True)
class DataLoss:
    """Seqs ``first..last`` of a device that will never arrive."""

    device_id: str
    site: str
    first: int
    last: int
    count: int
    cause: str  # declared | unfilled | overflow
    detail: str | None
    opened_ms: int
    recorded_ms: int


class GapManager:
    """Owns the per-device :class:`SeqTracker` objects and turns their gaps into actions."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        stats: IngestStats,
        bus: EventBus,
        lock: threading.RLock,
        *,
        grace_s: float = 2.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.sessions = sessions
        self.stats = stats
        self.bus = bus
        self.lock = lock
        self.grace_ms = int(grace_s * 1000)
        self.timeout_ms = int(timeout_s * 1000)
        self.trackers: dict[str, SeqTracker] = {}
        self._pending: list[DataLoss] = []
        self._refs: dict[str, DeviceRef] = {}
        self.send_command: CommandSender | None = None
        #: Told of every fill (the device record, the seq as a one-seq gap with its gap's times) and of
        #: gaps expired by the sweep; the seq watermark keeps both in step with the acknowledgements.
        self.on_fill: Callable[[DeviceRecord, Gap], None] | None = None
        self.on_expired: Callable[[], None] | None = None
        self._gaps_changed = False
        self._expired_unwritten = False  # gaps expired into records not yet written (journal not yet told)
        self._declared: set[tuple[str, int, int, str]] = set()  # (device, first, last, detail), bounded
        self._declared_order: deque[tuple[str, int, int, str]] = deque()

    def observe(self, rec: DeviceRecord, seq: int, now_ms: int) -> bool:
        """True when ``seq`` is new for the device (call with the registry lock held)."""
        tracker = self.trackers.get(rec.id)
        if tracker is None:
            tracker = SeqTracker(None if rec.last_seq is None else rec.last_seq + 1)
            self.trackers[rec.id] = tracker
        obs = tracker.observe(seq, now_ms)
        if obs is ACCEPTED:  # the next seq in order: nearly every message
            return True
        if obs.verdict is Verdict.DUPLICATE:
            self.stats.duplicates += 1
            return False
        if obs.opened is not None or obs.filled is not None:
            self._gaps_changed = True
        if obs.opened is not None:
            self.stats.gaps["opened"] += 1
            self._refs[rec.id] = rec.device_ref()
            logger.info("gap %s..%s opened for %s", obs.opened[0], obs.opened[1], rec.id)
        elif obs.filled is not None:
            self.stats.gaps["filled"] += 1
            if self.on_fill is not None:
                self.on_fill(rec, obs.filled)
        return True

    def gaps_by_device(self) -> list[tuple[str, list[Gap]]]:
        """(device id, open gaps) of every device with any (call with the lock held)."""
        return [(device_id, t.gaps) for device_id, t in self.trackers.items() if t.gaps]

    def reset(self, device_id: str, now_ms: int) -> None:
        """Forget a device's seq state (it started counting again); open gaps are recorded as lost."""
        tracker = self.trackers.pop(device_id, None)
        if tracker is None:
            return
        self._gaps_changed = True
        ref = self._refs.get(device_id)
        for gap in [*tracker.gaps, *tracker.overflowed]:
            site = ref.site if ref else ""
            loss = DataLoss(device_id, site, gap.first, gap.last, gap.size, "reset", None, gap.opened_ms, now_ms)
            self._record(loss)

    def declare(self, rec: DeviceRecord, notice: GapNotice, now_ms: int) -> None:
        """The device reports ``first..last`` as dropped: record the loss (registry lock held)."""
        tracker = self.trackers.get(rec.id)
        self._refs[rec.id] = rec.device_ref()
        self._gaps_changed = True
        closed = [] if tracker is None else tracker.declare_lost(notice.first, notice.last, now_ms)
        detail = f"{notice.channel}: {notice.reason}"
        if not closed:
            # Nothing was open (no seq state yet, already received, or already recorded). A notice
            # redelivered after a restart (its loss record flushed, its seq not yet acknowledged) must
            # not record the same loss twice; otherwise keep the device's word.
            if (rec.id, notice.first, notice.last, detail) in self._declared:  # this run's or loaded at start
                logger.info("gap notice %s..%s from %s already recorded", notice.first, notice.last, rec.id)
                return
            closed = [(notice.first, notice.last)]
        for first, last in closed:
            self._record(DataLoss(rec.id, rec.site, first, last, last - first + 1, "declared", detail, now_ms, now_ms))

    def _remember_declared(self, key: tuple[str, int, int, str]) -> None:
        if key in self._declared:
            return
        if len(self._declared_order) >= DECLARED_REMEMBERED:
            self._declared.discard(self._declared_order.popleft())
        self._declared_order.append(key)
        self._declared.add(key)

    def load_declared(self, limit: int = DECLARED_REMEMBERED) -> int:
        """Remember the most recent declared losses of earlier runs (a notice redelivered after a restart
        must not be recorded again); return how many."""
        with self.sessions() as session:
            rows = session.execute(
                select(DataLossRow.device_id, DataLossRow.first, DataLossRow.last, DataLossRow.detail)
                .where(DataLossRow.cause == "declared")
                .order_by(DataLossRow.id.desc())
                .limit(limit)
            ).all()
        with self.lock:
            for device_id, first, last, detail in reversed(rows):
                self._remember_declared((device_id, first, last, detail or ""))
        return len(rows)

    def _record(self, loss: DataLoss) -> None:
        if loss.cause == "declared":
            self._remember_declared((loss.device_id, loss.first, loss.last, loss.detail or ""))
        self.stats.gaps["declared" if loss.cause == "declared" else "lost"] += 1
        self.stats.lost_seqs += loss.count
        self._pending.append(loss)
        logger.warning(
            "data loss on %s: seqs %s..%s (%s, %s)", loss.device_id, loss.first, loss.last, loss.cause, loss.detail
        )

    def sweep(self, now_ms: int) -> None:
        """Ask for resends of gaps past the grace; record gaps past the timeout as lost; persist."""
        resends: list[tuple[DeviceRef, int, int]] = []
        with self.lock:
            for device_id, tracker in self.trackers.items():
                if not tracker.gaps and not tracker.overflowed:
                    continue
                for gap in tracker.expire(now_ms - self.timeout_ms):
                    self._gaps_changed = self._expired_unwritten = True
                    ref = self._refs.get(device_id)
                    site = ref.site if ref else ""
                    self._record(
                        DataLoss(
                            device_id, site, gap.first, gap.last, gap.size, "unfilled", None, gap.opened_ms, now_ms
                        )
                    )
                for gap in tracker.due_for_resend(now_ms - self.grace_ms, now_ms):
                    ref = self._refs.get(device_id)
                    if ref is not None:
                        resends.append((ref, gap.first, gap.last))
        for ref, first, last in resends:
            self._resend(ref, first, last, now_ms)
        try:
            self.flush()
        except Exception:  # the records stay queued; the hub's state flush retries and reports the outage
            logger.debug("data-loss records not written yet", exc_info=True)

    def _resend(self, ref: DeviceRef, first: int, last: int, now_ms: int) -> None:
        if self.send_command is None:
            return
        # No expiry: a resend only replays what the device already sent (the hub dedups), and an
        # expiry in hub time would be judged against the device's clock -- a device running more
        # than the gap timeout ahead would refuse it as expired and the gap would become a loss.
        cmd = Command(
            id=f"rs-{uuid.uuid4().hex[:16]}",
            op=CommandOp.RESEND,
            ts=now_ms,
            args={"first": first, "last": last},
        )
        try:
            self.send_command(ref, cmd)
            self.stats.resends += 1
        except Exception:  # the broker may be away; the gap still times out into a loss record
            logger.exception("could not send resend %s..%s to %s", first, last, ref.device_id)

    def save_open(self) -> bool:
        """Replace the saved open gaps with the current ones (when they changed); True if written."""
        with self.lock:
            if not self._gaps_changed:
                return False
            self._gaps_changed = False
            rows = [
                {"device_id": d, "first": g.first, "last": g.last, "high": t.high or 0, "opened_ms": g.opened_ms,
                 "resend_ms": g.resend_ms}
                for d, t in self.trackers.items()
                for g in t.gaps
            ]  # fmt: skip
        try:
            with self.sessions.begin() as session:
                session.execute(delete(OpenGapRow))
                if rows:
                    session.execute(insert(OpenGapRow), rows)
        except Exception:
            with self.lock:
                self._gaps_changed = True  # saved at the next try
            raise
        return True

    def load_open(
        self,
        devices: dict[str, DeviceRecord],
        *,
        safe_seqs: bool = False,
        journalled: dict[str, list[Gap]] | None = None,
    ) -> int:
        """Resume waiting for the gaps saved by the last run; return how many.

        ``journalled``: the safe gaps of the seq journal (hub.ingest.watermark), exact with respect to what
        was acknowledged; when given they replace the open-gap table, which is saved about once a
        second from the live gaps (fills not yet durable already taken out, fills made durable since
        the save still in).

        With ``safe_seqs`` (ingest acknowledges only durable points, hub.ingest.watermark) a device's
        ``last_seq`` is the highest seq it is safe to resume after, and the saved ``high`` -- the
        highest seq *processed* when the gaps were saved -- may be ahead of it: the messages in
        between were not acknowledged and will be delivered again, so they must not look like
        duplicates. The tracker then resumes after ``last_seq``, and gaps that messages beyond it
        opened are dropped (those messages reopen them when they come again).
        """
        self.load_declared()
        if journalled is not None:
            return self._load_journalled(devices, journalled)
        with self.sessions() as session:
            rows = session.scalars(select(OpenGapRow).order_by(OpenGapRow.device_id, OpenGapRow.first)).all()
        loaded = 0
        with self.lock:
            for row in rows:
                rec = devices.get(row.device_id)
                safe = rec.last_seq if safe_seqs and rec is not None else None
                if safe is not None and row.first > safe:
                    continue
                tracker = self.trackers.get(row.device_id)
                if tracker is None:
                    if safe is not None:
                        tracker = SeqTracker(safe + 1)
                    else:
                        last_seq = rec.last_seq if rec is not None and rec.last_seq is not None else row.high
                        tracker = SeqTracker(max(last_seq, row.high) + 1)
                    self.trackers[row.device_id] = tracker
                tracker.gaps.append(Gap(row.first, row.last, row.opened_ms, row.resend_ms))
                loaded += 1
                if rec is not None:
                    self._refs[row.device_id] = rec.device_ref()
        return loaded

    def _load_journalled(self, devices: dict[str, DeviceRecord], journalled: dict[str, list[Gap]]) -> int:
        loaded = 0
        with self.lock:
            for device_id, gaps in journalled.items():
                rec = devices.get(device_id)
                if rec is None or rec.last_seq is None:
                    continue  # unknown now, or its seqs started over: nothing below a safe seq to wait for
                kept = [g for g in gaps if g.last <= rec.last_seq]
                if not kept:
                    continue
                tracker = SeqTracker(rec.last_seq + 1)
                tracker.gaps.extend(kept)
                self.trackers[device_id] = tracker
                self._refs[device_id] = rec.device_ref()
                self._gaps_changed = True  # the open-gap table catches up at the next save
                loaded += len(kept)
        return loaded

    def flush(self) -> int:
        """Persist queued data-loss records and publish them on the bus."""
        with self.lock:
            items, self._pending = self._pending, []
            expired, self._expired_unwritten = self._expired_unwritten, False
        if not items:
            return 0
        try:
            with self.sessions.begin() as session:
                session.add_all(DataLossRow(**asdict(i)) for i in items)
        except Exception:
            with self.lock:  # nothing was committed: the records wait for the next flush, in order
                self._pending[:0] = items
                self._expired_unwritten = self._expired_unwritten or expired
            raise
        for item in items:
            self.bus.publish("data_loss", asdict(item))
        if expired and self.on_expired is not None:
            # Only now may the journal forget the expired gaps: a kill before the records were
            # written must find the gaps again (and expire them again), not lose their records.
            try:
                self.on_expired()
            except OSError as exc:  # the records are written; at worst a restart records them again
                logger.error("seq journal not rewritten after expired gaps (%s): a restart may record them twice", exc)
        return len(items)

    def list_page(
        self, *, device: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[int, list[dict[str, Any]]]:
        """(total, page newest first) of data-loss records."""
        self.flush()
        conds = [] if device is None else [DataLossRow.device_id == device]
        with self.sessions() as session:
            total = session.scalar(select(func.count(DataLossRow.id)).where(*conds)) or 0
            rows = session.scalars(
                select(DataLossRow).where(*conds).order_by(DataLossRow.id.desc()).limit(limit).offset(offset)
            ).all()
        return total, [{c: getattr(r, c) for c in ("id", *DataLoss.__dataclass_fields__)} for r in rows]

    def open_gaps(self) -> list[dict[str, Any]]:
        """Gaps still open right now, for the API."""
        with self.lock:
            return [
                {"device_id": d, "first": g.first, "last": g.last, "opened_ms": g.opened_ms, "resend_ms": g.resend_ms}
                for d, t in self.trackers.items()
                for g in t.gaps
            ]
