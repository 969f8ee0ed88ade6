"""The ``camera`` driver: analytics on its own thread, aggregates and events handed out by ``poll``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edge.camera.config import CameraConfig, CameraConfigBase
from edge.camera.pipeline import CameraPipeline, FrameResult, NoFrameError
from edge.camera.privacy import FilteredSnapshot
from edge.camera.sources import FrameSource, VideoCaptureSource
from edge.drivers import DriverError, DriverEvent, Sample, register_driver
from edge.wire import MetricValue

logger = logging.getLogger(__name__)

#: Events kept for the agent between polls; beyond this the oldest are dropped (and logged).
MAX_PENDING_EVENTS = 10_000

__all__ = ["CameraConfig", "CameraDriver"]


class _Window:
    """Aggregates since the last poll."""

    def __init__(self) -> None:
        self.frames = 0
        self.misses = 0
        self.latency_ms = 0.0
        self.motion = 0.0
        self.last: dict[str, MetricValue] = {}
        self.started = time.monotonic()

    def add(self, result: FrameResult) -> None:
        if not result.frame_ok:
            self.misses += 1
            return
        self.frames += 1
        self.latency_ms += result.latency_ms
        self.motion += float(result.metrics.get("motion_ratio", 0.0))
        self.last = dict(result.metrics)


class CameraDriver:
    """Runs a :class:`CameraPipeline` over a :class:`FrameSource` on a thread; ``poll`` drains results."""

    def __init__(
        self,
        config: CameraConfigBase,
        source: FrameSource,
        *,
        pipeline: CameraPipeline | None = None,
        on_event: Callable[[DriverEvent], None] | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.pipeline = pipeline or CameraPipeline(config)
        self._on_event = on_event
        self._lock = threading.Lock()
        self._window = _Window()
        self._events: list[DriverEvent] = []
        self._stop = threading.Event()
        self._stream_ok = False
        self._last_frame: float | None = None  # monotonic time of the last good frame
        self._thread = threading.Thread(target=self._run, name="camera-analytics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.source.read()
                if self._stop.is_set():
                    break
                if frame.image is None:
                    result = self.pipeline.missing(frame.ts_ms)
                else:
                    result = self.pipeline.process(frame.image, frame.ts_ms)
            except Exception:  # loop boundary: one bad frame must not stop the analytics
                logger.exception("camera analytics failed on a frame")
                self._stop.wait(0.5)
                continue
            with self._lock:
                self._window.add(result)
                self._stream_ok = result.frame_ok
                if result.frame_ok:
                    self._last_frame = time.monotonic()
                self._events.extend(result.events)
                if len(self._events) > MAX_PENDING_EVENTS:
                    dropped = len(self._events) - MAX_PENDING_EVENTS
                    logger.error("camera: %d events not polled in time were dropped", dropped)
                    del self._events[:dropped]
            if self._on_event is not None:
                for event in result.events:
                    self._on_event(event)

    def poll(self, now_ms: int) -> Sample:
        """Aggregates since the last poll: fps, latency, people per zone, motion, light, sharpness, stream."""
        if not self._thread.is_alive() and not self._stop.is_set():
            raise DriverError("camera analytics thread has stopped", retryable=False)
        with self._lock:
            window, self._window = self._window, _Window()
            events, self._events = self._events, []
            stream_ok = self._stream_ok
            last_frame = self._last_frame
        now = time.monotonic()
        elapsed = max(now - window.started, 1e-3)
        metrics: dict[str, MetricValue] = {
            "fps": round(window.frames / elapsed, 2),
            "stream_ok": stream_ok and window.frames > 0,
        }
        if last_frame is not None:
            # the operator's "last frame age": a frozen stream shows here before stream_lost fires
            metrics["frame_age_s"] = round(now - last_frame, 2)
        health = self.source.health()
        metrics["stream_failures"] = health.failures
        metrics["stream_reconnects"] = health.reconnects
        if window.frames:
            metrics["latency_ms"] = round(window.latency_ms / window.frames, 2)
            metrics.update(window.last)
            metrics["motion_ratio"] = round(window.motion / window.frames, 4)
        return Sample(metrics, tuple(events))

    def snapshot_result(self) -> FilteredSnapshot:
        """The privacy-filtered latest frame and what the filter did."""
        try:
            return self.pipeline.snapshot()
        except NoFrameError as exc:
            raise DriverError("no frame to snapshot yet") from exc

    def snapshot(self) -> bytes:
        """Filtered JPEG of the latest frame; raises :class:`DriverError` if the filter withheld it."""
        result = self.snapshot_result()
        if result.jpeg is None:
            raise DriverError(f"snapshot withheld: {result.note}")
        return result.jpeg

    def close(self) -> None:
        """Stop the analytics thread and release the source."""
        self._stop.set()
        self.source.close()
        self._thread.join(timeout=10.0)


def _make_camera(config: CameraConfig) -> CameraDriver:
    source = VideoCaptureSource(
        config.source, reconnect_max_s=config.reconnect_max_s, read_timeout_s=config.read_timeout_s
    )
    return CameraDriver(config, source)


register_driver("camera", CameraConfig, _make_camera, "camera box: people, zones, tamper and stream analytics")
