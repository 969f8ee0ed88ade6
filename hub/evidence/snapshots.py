"""Snapshot evidence on the hub: verified against the announced SHA-256, stored with retention, served by the API.

A camera event announces its snapshot (``snapshot.sha256``, size, filter
status); the JPEG itself arrives separately on ``snapshot/{event_id}``. The image
is kept as ``<device>/<event_id>.jpg`` with a JSON side file ``<event_id>.json``
linking it to the event (type, zone, time, hash), in a :class:`~hub.evidence.blobs.SnapshotBlobs`
backend: files under ``data_dir/snapshots`` for a single hub, the cluster's JetStream object
store for replicas. A snapshot that arrives before its event waits in memory (bounded) until the
event names its hash; one whose hash does not match is refused with a reason and never stored.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final, Protocol

from edge.wire import Channel, Event, Status, WireError, check_snapshot, topic
from hub.evidence.blobs import META_SUFFIX, FileSnapshotBlobs, SnapshotBlobs, blob_names, image_of
from hub.ingest.deadletter import DeadLetterStore
from hub.ingest.sinks import DeviceRef

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS: Final = 30.0
#: Snapshots waiting for their event: at most this many, for at most this long.
MAX_PENDING: Final = 64
PENDING_TTL_MS: Final = 10 * 60 * 1000
PURGE_INTERVAL_S: Final = 3600.0


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """What the hub knows about one event's snapshot."""

    device_id: str
    event_id: str
    sha256: str | None
    size: int
    status: str
    event_type: str
    zone: str | None
    event_ts: int
    announced_ms: int
    stored_ms: int | None = None
    note: str | None = None


def announced_ms(side_file: bytes | None, modified_ms: int) -> int:
    """When a side file's event was announced; a side file that cannot be read counts from its last write."""
    if side_file is None:
        return modified_ms
    try:
        return int(json.loads(side_file)["announced_ms"])
    except (ValueError, KeyError, TypeError):
        return modified_ms


class SnapshotStore:
    """Snapshots in ``blobs`` (default: files under ``data_dir/snapshots``); thread-safe; ``store_snapshot``
    returns a refusal reason or None."""

    def __init__(
        self,
        data_dir: Path,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
        blobs: SnapshotBlobs | None = None,
    ) -> None:
        self.blobs: SnapshotBlobs = FileSnapshotBlobs(Path(data_dir) / "snapshots") if blobs is None else blobs
        self.retention_ms = int(retention_days * 86_400_000)
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: OrderedDict[tuple[str, str], tuple[bytes, int]] = OrderedDict()
        self.rejected: dict[str, int] = {}

    def meta(self, device_id: str, event_id: str) -> SnapshotMeta | None:
        """The side file of an announced snapshot, or None."""
        _, meta_name = blob_names(device_id, event_id)
        raw = self.blobs.get(meta_name)
        return None if raw is None else SnapshotMeta(**json.loads(raw))

    def read(self, device_id: str, event_id: str) -> bytes | None:
        """The verified JPEG bytes, or None when not (yet) stored."""
        image_name, _ = blob_names(device_id, event_id)
        return self.blobs.get(image_name)

    def _write_meta(self, meta: SnapshotMeta) -> None:
        _, meta_name = blob_names(meta.device_id, meta.event_id)
        self.blobs.put(meta_name, json.dumps(asdict(meta), separators=(",", ":")).encode())

    # ------------------------------------------------------------- ingesting

    def announce(self, device_id: str, event: Event, received_ms: int) -> str | None:
        """Remember the hash an event announces; verify a snapshot already waiting for it."""
        ref = event.snapshot
        if ref is None:
            return None
        with self._lock:
            old = self.meta(device_id, event.event_id)
            stored_ms = old.stored_ms if old is not None and old.sha256 == ref.sha256 else None
            meta = SnapshotMeta(
                device_id, event.event_id, ref.sha256, ref.size, ref.status, event.type, event.zone,
                event.ts, received_ms, stored_ms, ref.note,
            )  # fmt: skip
            self._write_meta(meta)
            waiting = self._pending.pop((device_id, event.event_id), None)
        if waiting is None:
            return None
        return self.store_snapshot(device_id, event.event_id, waiting[0], waiting[1])

    def _reject(self, reason: str, device_id: str, event_id: str, detail: str) -> str:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        logger.warning("snapshot %s/%s refused (%s): %s", device_id, event_id, reason, detail)
        return reason

    def store_snapshot(self, device_id: str, event_id: str, payload: bytes, received_ms: int) -> str | None:
        """Verify and store a snapshot; return the refusal reason, or None (stored, or waiting for its event)."""
        try:
            image_name, _ = blob_names(device_id, event_id)
            sha = check_snapshot(payload)
        except WireError as exc:
            return self._reject(exc.reason, device_id, event_id, exc.detail)
        with self._lock:
            meta = self.meta(device_id, event_id)
            if meta is None:
                self._expire_pending(received_ms)
                if len(self._pending) >= MAX_PENDING:
                    self._pending.popitem(last=False)
                    self.rejected["pending_overflow"] = self.rejected.get("pending_overflow", 0) + 1
                self._pending[(device_id, event_id)] = (bytes(payload), received_ms)
                logger.info("snapshot %s/%s waits for its event", device_id, event_id)
                return None
            if meta.status == "withheld" or meta.sha256 is None:
                return self._reject("not_announced", device_id, event_id, "the event announced no image")
            if sha != meta.sha256:
                return self._reject("hash_mismatch", device_id, event_id, f"got {sha}, event announced {meta.sha256}")
            if meta.size and meta.size != len(payload):
                return self._reject("size_mismatch", device_id, event_id, f"{len(payload)} != {meta.size}")
            if meta.stored_ms is None or not self.blobs.has(image_name):
                self.blobs.put(image_name, payload)
                self._write_meta(replace(meta, stored_ms=received_ms))
        return None

    def _expire_pending(self, now_ms: int) -> None:
        for key in [k for k, (_, t) in self._pending.items() if now_ms - t > PENDING_TTL_MS]:
            del self._pending[key]

    # ------------------------------------------------------------- retention

    def purge(self, now_ms: int | None = None) -> int:
        """Delete snapshots (and their side files) announced before the retention period; return how many."""
        now = int(self.clock() * 1000) if now_ms is None else now_ms
        cutoff = now - self.retention_ms
        with self._lock:
            self._expire_pending(now)
        removed = 0
        for info in self.blobs.list():
            if not info.name.endswith(META_SUFFIX):
                continue
            if announced_ms(self.blobs.get(info.name), info.modified_ms) >= cutoff:
                continue
            with self._lock:  # not while a snapshot of the same event is being stored
                self.blobs.delete(image_of(info.name))
                self.blobs.delete(info.name)
            removed += 1
        if removed:
            logger.info("snapshot retention: removed %d older than %.1f days", removed, self.retention_ms / 86_400_000)
        return removed


class SnapshotPeers(Protocol):
    """What the snapshot sink takes from the other parts (the hub's ``ctx.services``)."""

    @property
    def deadletters(self) -> DeadLetterStore | None: ...


class SnapshotSink:
    """Hub sink: events announce hashes, snapshot payloads are verified and stored."""

    def __init__(self, store: SnapshotStore, services: SnapshotPeers | None = None, root: str = "gs") -> None:
        self.store = store
        self.services = services
        self.root = root

    def on_status(self, device: DeviceRef, status: Status, received_ms: int) -> None:
        """Not used."""

    def on_health(self, device: DeviceRef, old: str, new: str, at_ms: int) -> None:
        """Not used."""

    def on_event(self, device: DeviceRef, msg: Event, received_ms: int) -> None:
        """Remember the snapshot hash an event announces."""
        reason = self.store.announce(device.device_id, msg, received_ms)
        if reason is not None:
            logger.warning("snapshot of %s/%s refused: %s", device.device_id, msg.event_id, reason)

    def on_snapshot(self, device: DeviceRef, event_id: str, payload: bytes, sha256: str, received_ms: int) -> None:
        """Verify and store a snapshot payload; a refused one goes to the dead letter with its reason."""
        reason = self.store.store_snapshot(device.device_id, event_id, payload, received_ms)
        deadletters = None if self.services is None else self.services.deadletters
        if reason is not None and deadletters is not None:
            name = topic(device.site, device.device_id, Channel.SNAPSHOT, event_id=event_id, root=self.root)
            detail = f"snapshot refused ({reason}); sha256 {sha256}"
            deadletters.add(name, payload, reason, detail, received_ms, device_id=device.device_id)
