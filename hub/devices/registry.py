"""The device registry: who is out there, their session, health and latest values.

Kept in memory (ingest updates it per message without touching the DB) and
flushed to the state DB by :meth:`DeviceRegistry.flush` about once a second.

Health is one state per device: ``online``, ``stale``, ``offline`` or
``unknown``. It combines the status channel (birth / LWT, ordered by session
epoch so a late LWT of an older session never overrides a newer online), the
heartbeat interval announced at birth, and how long ago anything was heard.
A device whose health changes more than ``flap_max_changes`` times within
``flap_window_s`` is damped: further changes are held (and counted) until the
window calms down, then the settled state is reported once.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from edge.wire import DeviceKind, DeviceState, MetricValue, Point, Status
from hub.devices.models import DeviceRow
from hub.ingest.sinks import DeviceRef
from hub.metrics import IngestStats

logger = logging.getLogger(__name__)


class Health(StrEnum):
    """A device's combined health."""

    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


# Read on every message: an enum member read through its class costs ~10x a module global.
_ONLINE: Final = Health.ONLINE
_OFFLINE: Final = DeviceState.OFFLINE

#: ``device_status`` series field ``state_code`` per health (unknown is not written).
STATE_CODES: Final[dict[str, int]] = {Health.OFFLINE: 0, Health.STALE: 1, Health.ONLINE: 2}

HealthCallback = Callable[[DeviceRef, str, str, int], None]


class StatusOutcome(StrEnum):
    """What :meth:`DeviceRegistry.apply_status` did with a status message."""

    APPLIED = "applied"
    STALE = "stale"  # older session: ignored
    RESET = "reset"  # the device started its epochs (and seqs) over


@dataclass
class DeviceRecord:
    """The registry's in-memory view of one device."""

    id: str
    site: str
    kind: DeviceKind | None = None
    grid: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    epoch: int = 0
    status: str | None = None
    status_ts_ms: int | None = None
    interval_s: float | None = None
    agent: str | None = None
    last_seen_ms: int | None = None
    last_seq: int | None = None
    #: The highest seq made safe (its points durable, see hub.ingest.watermark); what the DB gets as last_seq
    #: when the registry's ``durable_seqs`` is on. ``seq_gen`` counts seq restarts (epoch resets).
    safe_seq: int | None = None
    seq_gen: int = 0
    latest: dict[str, MetricValue] = field(default_factory=dict)
    latest_ts_ms: int | None = None
    state: str = Health.UNKNOWN
    raw_state: str = Health.UNKNOWN
    changes: deque[int] = field(default_factory=deque)
    pending: bool = False
    flaps_suppressed: int = 0
    persisted: bool = False
    ref: DeviceRef | None = None
    key: tuple[str, Mapping[str, str]] | None = None

    def device_ref(self) -> DeviceRef:
        """The frozen reference handed to sinks (cached until the identity changes)."""
        if self.ref is None:
            self.ref = DeviceRef(self.id, self.site, self.kind, self.grid, dict(self.labels))
        return self.ref

    def series_key(self) -> tuple[str, Mapping[str, str]]:
        """(measurement, tags) of this device's points (cached until the identity changes)."""
        if self.key is None:
            tags = {"site": self.site, "device": self.id}
            if self.grid:
                tags["grid"] = self.grid
            self.key = (self.kind.value if self.kind is not None else "unknown", tags)
        return self.key

    def public(self) -> dict[str, Any]:
        """A JSON-ready dict for the REST API."""
        seen = self.last_seen_ms
        return {
            "id": self.id,
            "site": self.site,
            "kind": None if self.kind is None else self.kind.value,
            "grid": self.grid,
            "state": self.state,
            "status": self.status,
            "last_seen": None if seen is None else datetime.fromtimestamp(seen / 1000, UTC).isoformat(),
            "last_seen_ms": seen,
            "latest": dict(self.latest),
            "latest_ts_ms": self.latest_ts_ms,
            "labels": dict(self.labels),
            "epoch": self.epoch,
            "interval_s": self.interval_s,
            "agent": self.agent,
            "last_seq": self.last_seq,
            "flapping": self.pending,
            "flaps_suppressed": self.flaps_suppressed,
        }

    def row(self) -> dict[str, Any]:
        """Column values for the ``devices`` table."""
        return {
            "id": self.id,
            "site": self.site,
            "kind": None if self.kind is None else self.kind.value,
            "grid": self.grid,
            "labels": dict(self.labels),
            "epoch": self.epoch,
            "status": self.status,
            "status_ts_ms": self.status_ts_ms,
            "state": self.state,
            "interval_s": self.interval_s,
            "agent": self.agent,
            "last_seen_ms": self.last_seen_ms,
            "last_seq": self.last_seq,
            "latest": dict(self.latest),
            "latest_ts_ms": self.latest_ts_ms,
            "flaps_suppressed": self.flaps_suppressed,
        }


class DeviceRegistry:
    """In-memory registry with periodic persistence and health evaluation.

    ``lock`` guards every record; ingest holds it while it processes a message, so
    the per-message updates (:meth:`touch`, :meth:`update_latest`) take no lock of their own.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        stats: IngestStats,
        *,
        stale_factor: float = 3.0,
        default_interval_s: float = 60.0,
        flap_window_s: float = 60.0,
        flap_max_changes: int = 6,
    ) -> None:
        self.sessions = sessions
        self.stats = stats
        self.stale_factor = stale_factor
        self.default_interval_s = default_interval_s
        self.flap_window_ms = int(flap_window_s * 1000)
        self.flap_max_changes = flap_max_changes
        self.lock = threading.RLock()
        #: Write ``safe_seq`` (not ``last_seq``) to the DB: set when ingest acknowledges only durable points.
        self.durable_seqs = False
        self.devices: dict[str, DeviceRecord] = {}
        self._dirty: set[str] = set()
        self._listeners: list[HealthCallback] = []
        self.hold_until_ms = 0

    def add_listener(self, fn: HealthCallback) -> None:
        """Call ``fn(ref, old, new, at_ms)`` on every reported health change."""
        self._listeners.append(fn)

    def load(self) -> int:
        """Read every persisted device into memory; return how many."""
        with self.sessions() as session:
            rows = session.scalars(select(DeviceRow)).all()
        with self.lock:
            for row in rows:
                kind = DeviceKind(row.kind) if row.kind and row.kind in DeviceKind._value2member_map_ else None
                self.devices[row.id] = DeviceRecord(
                    id=row.id,
                    site=row.site,
                    kind=kind,
                    grid=row.grid,
                    labels=dict(row.labels or {}),
                    epoch=row.epoch,
                    status=row.status,
                    status_ts_ms=row.status_ts_ms,
                    interval_s=row.interval_s,
                    agent=row.agent,
                    last_seen_ms=row.last_seen_ms,
                    last_seq=row.last_seq,
                    latest=dict(row.latest or {}),
                    latest_ts_ms=row.latest_ts_ms,
                    state=row.state,
                    raw_state=row.state,
                    flaps_suppressed=row.flaps_suppressed,
                    persisted=True,
                )
        return len(rows)

    def ensure(self, site: str, device_id: str) -> DeviceRecord:
        """The record for ``device_id``, created on first sight."""
        rec = self.devices.get(device_id)
        if rec is None:
            with self.lock:
                rec = self.devices.get(device_id)
                if rec is None:
                    rec = DeviceRecord(device_id, site)
                    self.devices[device_id] = rec
                    self._dirty.add(device_id)
        return rec

    def apply_status(self, rec: DeviceRecord, status: Status, now_ms: int) -> StatusOutcome:
        """Apply a birth/LWT/offline status unless it is from an older session (then counted and ignored)."""
        with self.lock:
            outcome = StatusOutcome.APPLIED
            if status.epoch < rec.epoch:
                if rec.status_ts_ms is None or status.ts <= rec.status_ts_ms:
                    # A late LWT (or birth) of an older session never overrides the current one. Its
                    # payload was built when that session connected, so it is not newer than ours.
                    self.stats.stale_status += 1
                    return StatusOutcome.STALE
                # A lower epoch with a newer timestamp: the device lost its state (reflashed,
                # outbox wiped) and counts again from the start; so will its seq.
                logger.warning("device %s restarted its epoch (%s -> %s)", rec.id, rec.epoch, status.epoch)
                self.stats.epoch_resets += 1
                rec.last_seq = None
                outcome = StatusOutcome.RESET
            rec.epoch = status.epoch
            rec.status_ts_ms = status.ts
            rec.status = status.state.value
            if status.state is DeviceState.ONLINE:
                if status.kind is not None or status.grid is not None or status.labels:
                    if status.kind is not None:
                        rec.kind = status.kind
                    rec.grid = status.grid or rec.grid
                    rec.labels = dict(status.labels) or rec.labels
                    rec.ref = None
                    rec.key = None
                rec.interval_s = status.interval_s or rec.interval_s
                rec.agent = status.agent or rec.agent
                rec.last_seen_ms = now_ms
            self._dirty.add(rec.id)
            self._set_raw(rec, self._raw_health(rec, now_ms), now_ms)
            return outcome

    def touch(self, rec: DeviceRecord, now_ms: int, seq: int | None) -> None:
        """Something was heard from the device (any accepted sequenced message)."""
        rec.last_seen_ms = now_ms
        if seq is not None and (rec.last_seq is None or seq > rec.last_seq):
            rec.last_seq = seq
        self._dirty.add(rec.id)
        if rec.raw_state != _ONLINE and rec.status != _OFFLINE:
            with self.lock:
                self._set_raw(rec, self._raw_health(rec, now_ms), now_ms)

    def update_latest(self, rec: DeviceRecord, ts_ms: int, metrics: Mapping[str, MetricValue]) -> None:
        """Record readings at device time ``ts_ms`` unless newer ones are already known."""
        if rec.latest_ts_ms is None or ts_ms >= rec.latest_ts_ms:
            rec.latest.update(metrics)
            rec.latest_ts_ms = ts_ms

    def update_latest_points(self, rec: DeviceRecord, points: Iterable[Point]) -> None:
        """:meth:`update_latest` for each point in order, in one call (a batch message's points)."""
        latest, latest_ts = rec.latest, rec.latest_ts_ms
        for p in points:
            if latest_ts is None or p.ts >= latest_ts:
                latest.update(p.metrics)
                latest_ts = p.ts
        rec.latest_ts_ms = latest_ts

    def _raw_health(self, rec: DeviceRecord, now_ms: int) -> str:
        if rec.status == DeviceState.OFFLINE:
            return Health.OFFLINE
        if rec.last_seen_ms is None:
            return Health.UNKNOWN
        interval = rec.interval_s or self.default_interval_s
        if now_ms - rec.last_seen_ms > self.stale_factor * interval * 1000:
            return Health.STALE
        return Health.ONLINE

    def _set_raw(self, rec: DeviceRecord, new: str, now_ms: int) -> None:
        if new != rec.raw_state:
            rec.raw_state = new
            self._report(rec, now_ms)

    def _report(self, rec: DeviceRecord, now_ms: int) -> None:
        if rec.raw_state == rec.state:
            rec.pending = False
            return
        while rec.changes and rec.changes[0] <= now_ms - self.flap_window_ms:
            rec.changes.popleft()
        if len(rec.changes) >= self.flap_max_changes:
            rec.pending = True
            rec.flaps_suppressed += 1
            self.stats.flaps_suppressed += 1
            return
        rec.changes.append(now_ms)
        old, rec.state, rec.pending = rec.state, rec.raw_state, False
        self._dirty.add(rec.id)
        ref = rec.device_ref()
        for fn in self._listeners:
            try:
                fn(ref, old, rec.state, now_ms)
            except Exception:  # a listener must not break health tracking
                self.stats.sink_errors += 1
                logger.exception("health listener failed for %s", rec.id)

    def hold_staleness(self, until_ms: int) -> None:
        """Skip staleness checks until ``until_ms`` (just after a hub start)."""
        # Retained statuses and the queued backlog are still arriving: a device must not look
        # stale (and raise an incident) only because the hub itself was down.
        self.hold_until_ms = until_ms

    def evaluate(self, now_ms: int) -> None:
        """Re-check staleness and release damped devices whose window calmed down."""
        if now_ms < self.hold_until_ms:
            return
        with self.lock:
            for rec in list(self.devices.values()):
                raw = self._raw_health(rec, now_ms)
                if raw != rec.raw_state:
                    self._set_raw(rec, raw, now_ms)
                elif rec.pending:
                    self._report(rec, now_ms)
                    if rec.pending:
                        # _report counted a suppression; a hold is not a new change.
                        rec.flaps_suppressed -= 1
                        self.stats.flaps_suppressed -= 1

    def flush(self) -> int:
        """Write changed devices to the state DB; return how many rows were written."""
        with self.lock:
            dirty = [self.devices[d] for d in self._dirty if d in self.devices]
            self._dirty.clear()
            new: list[dict[str, Any]] = []
            changed: list[dict[str, Any]] = []
            for rec in dirty:
                row = rec.row()
                if self.durable_seqs:  # never persist a seq whose points might still be lost (hub.ingest.watermark)
                    row["last_seq"] = rec.safe_seq
                (changed if rec.persisted else new).append(row)
                rec.persisted = True
        if not dirty:
            return 0
        try:
            with self.sessions.begin() as session:
                if new:
                    session.execute(insert(DeviceRow), new)
                if changed:
                    session.execute(update(DeviceRow), changed)
        except Exception:
            # Nothing was committed: the devices stay dirty (the new ones still to be inserted) for the next try.
            with self.lock:
                inserted = {row["id"] for row in new}
                for rec in dirty:
                    self._dirty.add(rec.id)
                    if rec.id in inserted:
                        rec.persisted = False
            raise
        return len(dirty)

    def list_public(self) -> list[dict[str, Any]]:
        """Every device as a JSON-ready dict, sorted by id."""
        with self.lock:
            return [self.devices[k].public() for k in sorted(self.devices)]

    def get_public(self, device_id: str) -> dict[str, Any] | None:
        """One device as a JSON-ready dict, or None."""
        with self.lock:
            rec = self.devices.get(device_id)
            return None if rec is None else rec.public()

    def get_stored(self, device_id: str) -> dict[str, Any] | None:
        """Who a device is (id, site, kind, grid) as the state DB has it, for a device not in memory (a cluster
        replica holds only its partitions' devices; access checks on the others still need the grid)."""
        with self.sessions() as session:
            row = session.get(DeviceRow, device_id)
            if row is None:
                return None
            return {"id": row.id, "site": row.site, "kind": row.kind, "grid": row.grid}

    def health_counts(self) -> dict[str, int]:
        """How many devices are in each health state."""
        with self.lock:
            counts = Counter(r.state for r in self.devices.values())
        return {h.value: counts.get(h.value, 0) for h in Health}
