"""The camera analytics pipeline: one frame in, metrics and debounced events out.

Per frame: downscale, motion (MOG2 on a small grey copy), people (HOG, only on
moving regions and around known tracks, at most every ``detect_interval_s``, on
native-resolution crops scaled so the smallest person asked for, ``min_person_px``,
fills the detector's window), centroid tracking, zone counts and dwell, tamper checks every
``check_interval_s``, then the event board. Time is the frame timestamp, so
simulated scenes can run faster than real time. Frames stay in memory only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.camera.config import CameraConfigBase
from edge.camera.events import EventBoard, EventKey, Transition
from edge.camera.motion import MotionDetector, PixelBox
from edge.camera.people import PeopleDetector, SearchRegion, expand
from edge.camera.privacy import FilteredSnapshot, Image, PrivacyFilter
from edge.camera.scale import ScalePlan, detect_scale
from edge.camera.tamper import SceneStats, TamperMonitor, scene_stats
from edge.camera.tracking import Box, CentroidTracker
from edge.camera.zones import HourWindow, Polygon, local_time
from edge.drivers import DriverEvent
from edge.vocabulary import EVENT_TYPES, EventType
from edge.wire import EventState, MetricValue, Severity

logger = logging.getLogger(__name__)

CROWD, INTRUSION, LOITERING = EventType.CROWD_GATHERING, EventType.INTRUSION, EventType.LOITERING
COVERED, DEFOCUS, MOVED = EventType.TAMPER_COVERED, EventType.TAMPER_DEFOCUS, EventType.TAMPER_MOVED
STREAM_LOST = EventType.STREAM_LOST
#: Events whose raising carries a filtered snapshot as evidence.
EVIDENCE_EVENTS = frozenset({CROWD, INTRUSION, LOITERING, MOVED})
#: The severity each camera event is raised with: the vocabulary's.
SEVERITY: dict[str, Severity] = {
    t: EVENT_TYPES[t].severity for t in (CROWD, INTRUSION, LOITERING, COVERED, DEFOCUS, MOVED, STREAM_LOST)
}
#: A track counts as a person once the detector saw it this many times.
CONFIRM_HITS = 2
#: ...and while the detector saw it this recently: a track kept alive only to bridge
#: missed detections must not keep counting someone who has walked away.
COUNT_WITHIN_S = 0.5


class NoFrameError(RuntimeError):
    """No frame has been seen yet (or the last one is gone)."""


@dataclass(slots=True)
class FrameResult:
    """What one frame (or one missed frame) produced."""

    metrics: dict[str, MetricValue]
    events: list[DriverEvent] = field(default_factory=list)
    latency_ms: float = 0.0
    frame_ok: bool = True


@dataclass(frozen=True, slots=True)
class _Zone:
    name: str
    polygon: Polygon
    hours: tuple[HourWindow, ...]
    crowd_min: int | None
    loiter_s: float | None


class CameraPipeline:
    """Stateful analytics for one camera; not thread-safe (one analytics thread owns it)."""

    def __init__(self, config: CameraConfigBase, privacy: PrivacyFilter | None = None) -> None:
        self.config = config
        an = config.analytics
        if an.opencv_threads:
            cv2.setNumThreads(an.opencv_threads)
        self.privacy = privacy or PrivacyFilter(config.privacy)
        self.motion = MotionDetector(min_area=an.motion_min_area)
        self.people = PeopleDetector()
        self.scales = ScalePlan(an.min_person_px, config.zones)
        self.count_within_s = COUNT_WITHIN_S
        self.tracker = CentroidTracker(ttl_s=an.track_ttl_s)
        self.tamper = TamperMonitor(config.tamper)
        self.board = EventBoard()
        self._zones = [
            _Zone(
                z.name,
                Polygon(tuple(z.polygon)),
                tuple(HourWindow.parse(h) for h in z.restricted_hours),
                z.crowd_min_people,
                z.loiter_s,
            )
            for z in config.zones
        ]
        for z in config.zones:
            if z.crowd_min_people is not None:
                self.board.define(EventKey(CROWD, z.name), z.crowd_min_s, an.clear_after_s)
            if z.restricted_hours:
                self.board.define(EventKey(INTRUSION, z.name), z.intrusion_min_s, an.clear_after_s)
            if z.loiter_s is not None:
                self.board.define(EventKey(LOITERING, z.name), 0.0, an.clear_after_s)
        tmin = config.tamper.min_s
        for kind in (COVERED, DEFOCUS, MOVED):
            self.board.define(EventKey(kind), tmin, tmin)
        self.board.define(EventKey(STREAM_LOST), 0.0, 0.0)
        self._last_frame: Image | None = None
        #: (frame, head regions) replaced as one object, so other threads can take snapshots safely.
        self._evidence: tuple[Image, list[PixelBox]] | None = None
        self._last_frame_ms: int | None = None
        self._last_detect_ms: int | None = None
        self._last_tamper_ms: int | None = None
        self._stats = SceneStats(0.0, 0.0, 0.0)
        self._counts: dict[str, int] = {z.name: 0 for z in self._zones}
        self._people = 0

    # ------------------------------------------------------------------ frames

    def process(self, frame: Image, ts_ms: int) -> FrameResult:
        """Analyse one BGR frame taken at ``ts_ms``."""
        started = time.perf_counter()
        an = self.config.analytics
        height, width = frame.shape[:2]
        work_w = min(an.work_width, width)
        work_h = max(1, round(height * work_w / width))
        small = frame if work_w == width else cv2.resize(frame, (work_w, work_h), interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        tiny = cv2.resize(gray, (work_w // 2, work_h // 2), interpolation=cv2.INTER_AREA)
        self.motion.min_area = self._motion_min_area(height, tiny.shape[0], tiny.shape[1])
        motion = self.motion.apply(tiny)
        events: list[DriverEvent] = []
        self._last_frame, self._last_frame_ms = frame, ts_ms
        self._emit(events, STREAM_LOST, None, ts_ms, condition=False, value=None, message="stream restored")

        if self._last_detect_ms is None or ts_ms - self._last_detect_ms >= an.detect_interval_s * 1000:
            self._last_detect_ms = ts_ms
            self._detect(frame, tiny.shape[1], motion.boxes, ts_ms)
        self._evidence = (frame, self._head_regions(frame))
        self._update_zone_events(events, ts_ms)

        if self._last_tamper_ms is None or ts_ms - self._last_tamper_ms >= self.config.tamper.check_interval_s * 1000:
            self._last_tamper_ms = ts_ms
            self._check_tamper(events, gray, tiny, ts_ms, self._ignore_mask(tiny))

        metrics: dict[str, MetricValue] = {
            "people": self._people,
            "motion_ratio": round(motion.ratio, 4),
            "brightness": round(self._stats.brightness, 2),
            "sharpness": round(self._stats.sharpness, 2),
        }
        for name, count in self._counts.items():
            metrics[f"people_{name}"] = count
        latency = (time.perf_counter() - started) * 1000.0
        return FrameResult(metrics, events, latency, True)

    def missing(self, ts_ms: int) -> FrameResult:
        """Record that no frame could be read at ``ts_ms`` (raises stream_lost after the timeout)."""
        events: list[DriverEvent] = []
        if self._last_frame_ms is None:
            self._last_frame_ms = ts_ms
        lost = ts_ms - self._last_frame_ms >= self.config.stream_timeout_s * 1000
        gap_s = (ts_ms - self._last_frame_ms) / 1000.0
        self._emit(events, STREAM_LOST, None, ts_ms, condition=lost, value=gap_s, message=f"no frame for {gap_s:.1f} s")
        return FrameResult({}, events, 0.0, False)

    def snapshot(self) -> FilteredSnapshot:
        """The privacy-filtered last frame (for the agent's snapshot command; safe from any thread)."""
        evidence = self._evidence
        if evidence is None:
            raise NoFrameError("no frame received yet")
        frame, heads = evidence
        return self.privacy.apply(frame, heads)

    # ---------------------------------------------------------------- internals

    def _motion_min_area(self, native_h: int, tiny_h: int, tiny_w: int) -> float:
        """The configured smallest blob, lowered so the smallest person asked for still counts as motion."""
        # A standing person's blob is about a third as wide as tall; half of that area must do.
        person_h = self.scales.smallest_px * tiny_h / native_h
        person_area = 0.5 * 0.33 * person_h * person_h / (tiny_h * tiny_w)
        return min(self.config.analytics.motion_min_area, max(person_area, 1e-5))

    def _detect(self, frame: Image, tiny_w: int, motion_boxes: tuple[PixelBox, ...], ts_ms: int) -> None:
        height, width = frame.shape[:2]
        up = width / tiny_w
        boxes = [(int(x * up), int(y * up), int(w * up), int(h * up)) for x, y, w, h in motion_boxes]
        for track in self.tracker.tracks:
            tx, ty, tw, th = track.box
            boxes.append((int(tx * width), int(ty * height), int(tw * width), int(th * height)))
        regions = []
        for box in boxes:
            x, y, w, h = box
            min_px = self.scales.min_person_px((x / width, y / height, (x + w) / width, (y + h) / height))
            regions.append(SearchRegion(expand(box, min_px, width, height), detect_scale(min_px)))
        found: list[Box] = []
        if regions:
            for x, y, w, h in self.people.detect(frame, regions):
                found.append((x / width, y / height, w / width, h / height))
        self.tracker.update(found, ts_ms)
        self.tracker.update_zones({z.name: z.polygon for z in self._zones}, ts_ms)
        recent = ts_ms - int(self.count_within_s * 1000)
        confirmed = [t for t in self.tracker.tracks if t.hits >= CONFIRM_HITS and t.last_ms >= recent]
        self._people = len(confirmed)
        for zone in self._zones:
            self._counts[zone.name] = sum(1 for t in confirmed if zone.name in t.zone_since)

    def _update_zone_events(self, events: list[DriverEvent], ts_ms: int) -> None:
        confirmed = [t for t in self.tracker.tracks if t.hits >= CONFIRM_HITS]
        clock = local_time(ts_ms, self.config.analytics.timezone) if any(z.hours for z in self._zones) else None
        for zone in self._zones:
            count = self._counts[zone.name]
            if zone.crowd_min is not None:
                msg = f"{count} people in {zone.name}"
                self._emit(
                    events, CROWD, zone.name, ts_ms, condition=count >= zone.crowd_min, value=float(count), message=msg
                )
            if zone.hours and clock is not None:
                restricted = any(w.contains(clock) for w in zone.hours)
                msg = f"{count} person(s) in restricted zone {zone.name}"
                self._emit(
                    events,
                    INTRUSION,
                    zone.name,
                    ts_ms,
                    condition=restricted and count > 0,
                    value=float(count),
                    message=msg,
                )
            if zone.loiter_s is not None:
                dwell = max((t.dwell_s(zone.name, ts_ms) for t in confirmed), default=0.0)
                msg = f"a person has stayed {dwell:.0f} s in {zone.name}"
                self._emit(
                    events,
                    LOITERING,
                    zone.name,
                    ts_ms,
                    condition=dwell >= zone.loiter_s,
                    value=round(dwell, 1),
                    message=msg,
                )

    def _ignore_mask(self, tiny: Image) -> Image | None:
        """Where tracked people stand, so they never look like a moved camera."""
        tracks = self.tracker.tracks
        if not tracks:
            return None
        height, width = tiny.shape[:2]
        mask = np.zeros((height, width), np.uint8)
        for t in tracks:
            x, y, w, h = t.box
            x0, y0 = int((x - 0.2 * w) * width), int((y - 0.1 * h) * height)
            cv2.rectangle(mask, (x0, y0), (int((x + 1.2 * w) * width), int((y + 1.1 * h) * height)), 255, -1)
        return mask

    def _check_tamper(
        self, events: list[DriverEvent], gray: Image, tiny: Image, ts_ms: int, ignore: Image | None
    ) -> None:
        self._stats = stats = scene_stats(gray)
        state = self.tamper.check(stats, tiny, ts_ms, ignore)
        self._emit(
            events,
            COVERED,
            None,
            ts_ms,
            condition=state.covered,
            value=round(stats.brightness, 1),
            message="lens covered or dark",
        )
        if state.learning:
            return
        baseline = self.tamper.baseline or 1.0
        ratio = round(stats.relative_sharpness / baseline, 3)
        self._emit(events, DEFOCUS, None, ts_ms, condition=state.defocused, value=ratio, message="image out of focus")
        shift = round(state.shift_px * 2 * self._width_scale(), 1)
        self._emit(
            events, MOVED, None, ts_ms, condition=state.moved, value=shift, message=f"view shifted by {shift:.0f} px"
        )

    def _width_scale(self) -> float:
        if self._last_frame is None:
            return 1.0
        width = int(self._last_frame.shape[1])
        return width / min(self.config.analytics.work_width, width)

    def _head_regions(self, frame: Image) -> list[PixelBox]:
        height, width = frame.shape[:2]
        heads = []
        for t in self.tracker.tracks:
            x, y, w, h = t.box
            heads.append((int(x * width), int(y * height), int(w * width), int(h * height * 0.25)))
        return heads

    def _emit(
        self,
        events: list[DriverEvent],
        kind: str,
        zone: str | None,
        ts_ms: int,
        *,
        condition: bool,
        value: float | None,
        message: str,
    ) -> None:
        transition = self.board.update(EventKey(kind, zone), ts_ms, condition)
        if transition is None:
            return
        if transition is Transition.CLEARED:
            events.append(DriverEvent(kind, EventState.CLEARED, SEVERITY[kind], message, value, zone))
            return
        logger.info("camera event %s raised (zone=%s): %s", kind, zone, message)
        snap: FilteredSnapshot | None = None
        if kind in EVIDENCE_EVENTS and self._evidence is not None:
            snap = self.privacy.apply(*self._evidence)
        events.append(
            DriverEvent(
                kind,
                EventState.ACTIVE,
                SEVERITY[kind],
                message,
                value,
                zone,
                snapshot=None if snap is None else snap.jpeg,
                snapshot_status=None if snap is None else snap.status,
                snapshot_note=None if snap is None else snap.note,
                attrs={} if snap is None or snap.sha256 is None else {"snapshot_sha256": snap.sha256},
            )
        )
