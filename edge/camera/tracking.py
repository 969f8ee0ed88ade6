"""Greedy centroid tracker: stable ids for detected people, and how long each stays in a zone (pure)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge.camera.zones import Polygon

#: A detection as (x, y, w, h) in normalised frame coordinates.
Box = tuple[float, float, float, float]


@dataclass(slots=True)
class Track:
    """One person followed over frames; positions are normalised foot points."""

    track_id: int
    box: Box
    first_ms: int
    last_ms: int
    hits: int = 1
    #: zone -> when this track entered it (ms), while it stays inside.
    zone_since: dict[str, int] = field(default_factory=dict)

    @property
    def foot(self) -> tuple[float, float]:
        """Bottom centre of the box: where the person stands."""
        x, y, w, h = self.box
        return (x + w / 2.0, y + h)

    def dwell_s(self, zone: str, now_ms: int) -> float:
        """Seconds this track has been in ``zone`` (0 when outside)."""
        since = self.zone_since.get(zone)
        return 0.0 if since is None else (now_ms - since) / 1000.0


class CentroidTracker:
    """Match detections to tracks by nearest centroid; drop tracks unseen for ``ttl_s``."""

    def __init__(self, max_distance: float = 0.12, ttl_s: float = 2.0) -> None:
        self.max_distance = max_distance
        self.ttl_ms = int(ttl_s * 1000)
        self._tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    @property
    def tracks(self) -> list[Track]:
        """Live tracks."""
        return list(self._tracks.values())

    def update(self, boxes: Sequence[Box], now_ms: int) -> list[Track]:
        """Assign ``boxes`` seen at ``now_ms`` to tracks, create new ones, expire old ones."""
        centres = [(x + w / 2.0, y + h / 2.0) for x, y, w, h in boxes]
        pairs: list[tuple[float, int, int]] = []
        for tid, track in self._tracks.items():
            tx, ty, tw, th = track.box
            cx, cy = tx + tw / 2.0, ty + th / 2.0
            for i, (dx, dy) in enumerate(centres):
                dist = ((cx - dx) ** 2 + (cy - dy) ** 2) ** 0.5
                if dist <= self.max_distance:
                    pairs.append((dist, tid, i))
        pairs.sort()
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        for _dist, tid, i in pairs:
            if tid in used_tracks or i in used_boxes:
                continue
            used_tracks.add(tid)
            used_boxes.add(i)
            track = self._tracks[tid]
            track.box = boxes[i]
            track.last_ms = now_ms
            track.hits += 1
        for i, box in enumerate(boxes):
            if i not in used_boxes:
                tid = next(self._ids)
                self._tracks[tid] = Track(tid, box, now_ms, now_ms)
        self.expire(now_ms)
        return self.tracks

    def expire(self, now_ms: int) -> None:
        """Drop tracks not seen within the time-to-live."""
        for tid in [t for t, tr in self._tracks.items() if now_ms - tr.last_ms > self.ttl_ms]:
            del self._tracks[tid]

    def update_zones(self, zones: Mapping[str, Polygon], now_ms: int) -> None:
        """Record zone entry/exit per track from its foot point."""
        for track in self._tracks.values():
            fx, fy = track.foot
            for name, poly in zones.items():
                inside = poly.contains(fx, min(fy, 1.0))
                if inside and name not in track.zone_since:
                    track.zone_since[name] = now_ms
                elif not inside:
                    track.zone_since.pop(name, None)
