"""The camera platform's live state: tamper conditions and the latest redacted snapshot per camera.

:class:`CameraBoard` is a message sink (see :mod:`hub.ingest.sinks`): it keeps, in memory, which tamper
conditions each camera has active (covered, out of focus, moved, stream lost) and which event's
snapshot arrived last. Health, fps and frame age come from the device registry; :func:`camera_row`
joins both into the row the camera view shows, and :func:`matches` filters them.
Everything here is pure or an in-memory dict behind a lock: 1,800 cameras cost a few hundred kB.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from edge.vocabulary import EventType
from edge.wire import DeviceKind, Event, EventState, Status
from hub.ingest.sinks import DeviceRef
from hub.levels.rollup import DOWN_STATES

#: Event types that put a camera in a tamper state until they clear.
TAMPER_TYPES: Final = frozenset({EventType.TAMPER_COVERED, EventType.TAMPER_DEFOCUS, EventType.TAMPER_MOVED})
CONDITION_TYPES: Final = TAMPER_TYPES | {EventType.STREAM_LOST}
#: Filters of the camera view's state selector.
STATE_FILTERS: Final = ("online", "down", "tamper", "stream_lost", "no_stream")


@dataclass(slots=True)
class CameraState:
    """What the board remembers about one camera."""

    conditions: set[str] = field(default_factory=set)
    snapshot_event: str | None = None
    snapshot_ms: int | None = None
    tamper_changes: int = 0


class CameraBoard:
    """A sink that follows camera conditions and snapshots; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cameras: dict[str, CameraState] = {}

    def on_status(self, device: DeviceRef, status: Status, received_ms: int) -> None:
        """Nothing to do: health comes from the registry."""

    def on_health(self, device: DeviceRef, old: str, new: str, at_ms: int) -> None:
        """Nothing to do."""

    def on_event(self, device: DeviceRef, msg: Event, received_ms: int) -> None:
        """Set or clear a tamper / stream condition of a camera."""
        if msg.type not in CONDITION_TYPES or (device.kind is not None and device.kind is not DeviceKind.CAMERA):
            return
        with self._lock:
            cam = self._cameras.setdefault(device.device_id, CameraState())
            if msg.state is EventState.ACTIVE:
                cam.conditions.add(msg.type)
            else:
                cam.conditions.discard(msg.type)
            cam.tamper_changes += 1

    def on_snapshot(self, device: DeviceRef, event_id: str, payload: bytes, sha256: str, received_ms: int) -> None:
        """Remember the newest snapshot's event id (the image itself stays in the snapshot store)."""
        with self._lock:
            cam = self._cameras.setdefault(device.device_id, CameraState())
            if cam.snapshot_ms is None or received_ms >= cam.snapshot_ms:
                cam.snapshot_event, cam.snapshot_ms = event_id, received_ms

    def states(self) -> dict[str, CameraState]:
        """A copy of every camera's state."""
        with self._lock:
            return {
                k: CameraState(set(v.conditions), v.snapshot_event, v.snapshot_ms, v.tamper_changes)
                for k, v in self._cameras.items()
            }


def _analytics(labels: Mapping[str, str]) -> list[str]:
    return [a.strip() for a in labels.get("analytics", "").split(",") if a.strip()]


def camera_row(device: Mapping[str, Any], cam: CameraState | None, now_ms: int, *, evidence: bool) -> dict[str, Any]:
    """The camera view's row: inventory (labels), health (registry), conditions and snapshot (board)."""
    latest: Mapping[str, Any] = device.get("latest") or {}
    labels: Mapping[str, str] = device.get("labels") or {}
    conditions = sorted(cam.conditions) if cam is not None else []
    frame_age = latest.get("frame_age_s")
    latest_ts = device.get("latest_ts_ms")
    if isinstance(frame_age, int | float) and latest_ts is not None:
        frame_age = round(float(frame_age) + max(0, now_ms - latest_ts) / 1000, 1)  # age now, not at the poll
    stream_ok = latest.get("stream_ok")
    snapshot = None
    if evidence and cam is not None and cam.snapshot_event is not None:
        snapshot = {"event_id": cam.snapshot_event, "received_ms": cam.snapshot_ms}
    return {
        "id": device["id"],
        "site": device["site"],
        "grid": device.get("grid"),
        "location": labels.get("location"),
        "model": labels.get("model"),
        "analytics": _analytics(labels),
        "state": device["state"],
        "stream_up": bool(stream_ok) and device["state"] == "online" and EventType.STREAM_LOST not in conditions,
        "fps": latest.get("fps"),
        "frame_age_s": frame_age,
        "tamper": [c for c in conditions if c in TAMPER_TYPES],
        "stream_lost": EventType.STREAM_LOST in conditions,
        "snapshot": snapshot,
        "last_seen_ms": device.get("last_seen_ms"),
    }


def matches(row: Mapping[str, Any], area: str | None, state: str | None) -> bool:
    """Whether a camera row passes the view's filters (area = grid-code prefix, state in STATE_FILTERS)."""
    if area and not (row["grid"] or "").startswith(area):
        return False
    if state is None:
        return True
    if state == "online":
        return bool(row["state"] == "online")
    if state == "down":
        return row["state"] in DOWN_STATES
    if state == "tamper":
        return bool(row["tamper"])
    if state == "stream_lost":
        return bool(row["stream_lost"])
    return not row["stream_up"]  # no_stream: down, lost, or reporting no frames


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Counts for the view's header: total, online, down, tamper, stream lost, no stream."""
    out = dict.fromkeys(("total", "online", "down", "tamper", "stream_lost", "no_stream"), 0)
    for row in rows:
        out["total"] += 1
        for key in STATE_FILTERS:
            out[key] += matches(row, None, key)
    return out
