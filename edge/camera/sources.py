"""Frame sources behind one interface: OpenCV VideoCapture (RTSP/HTTP/USB/file) with reconnect and health."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import cv2

from edge.camera.privacy import Image

logger = logging.getLogger(__name__)

#: First wait after a failure; doubles up to the configured maximum.
INITIAL_BACKOFF_S = 0.5
#: ``read`` never blocks longer than this while waiting to reconnect, so misses are reported.
MAX_IDLE_WAIT_S = 0.5


@dataclass(frozen=True, slots=True)
class Frame:
    """One read: a BGR image taken at ``ts_ms``, or ``image=None`` when no frame could be read."""

    image: Image | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class StreamHealth:
    """Counters a source keeps about its stream."""

    connected: bool = False
    frames: int = 0
    failures: int = 0
    reconnects: int = 0
    last_frame_ms: int | None = None
    last_error: str | None = None


class FrameSource(Protocol):
    """Something that yields frames: a camera stream, a file, a simulated scene."""

    def read(self) -> Frame:
        """Block until the next frame (or a short wait) and return it; ``image`` None means a miss."""
        ...

    def health(self) -> StreamHealth:
        """Stream counters, for metrics and diagnostics."""
        ...

    def close(self) -> None:
        """Release the stream; a blocked ``read`` returns soon after."""
        ...


def _capture_target(url: str) -> int | str:
    return int(url) if url.isdigit() else url


class VideoCaptureSource:
    """OpenCV ``VideoCapture`` with exponential-backoff reconnect; files loop and play at their own fps."""

    def __init__(
        self,
        url: str,
        *,
        reconnect_max_s: float = 30.0,
        read_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.reconnect_max_s = reconnect_max_s
        self.read_timeout_s = read_timeout_s
        self._clock = clock
        self._stop = threading.Event()
        self._cap: cv2.VideoCapture | None = None
        self._backoff = INITIAL_BACKOFF_S
        self._retry_at = 0.0
        self._health = StreamHealth()
        self._is_file = Path(url).is_file()
        self._frame_period = 0.0
        self._next_due = 0.0

    def health(self) -> StreamHealth:
        """Stream counters."""
        return self._health

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _fail(self, error: str) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._health = replace(self._health, connected=False, failures=self._health.failures + 1, last_error=error)
        self._retry_at = time.monotonic() + self._backoff
        logger.warning("camera %s: %s; retrying in %.1f s", self.url, error, self._backoff)
        self._backoff = min(self._backoff * 2, self.reconnect_max_s)

    def _open(self) -> bool:
        timeout_ms = int(self.read_timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        target = _capture_target(self.url)
        cap = cv2.VideoCapture(target, cv2.CAP_ANY, params) if isinstance(target, str) else cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            self._fail("cannot open stream")
            return False
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        # Files decode as fast as the CPU allows; pace them like the camera that recorded them.
        self._frame_period = 1.0 / (fps if 0 < fps <= 120 else 10.0) if self._is_file else 0.0
        self._next_due = time.monotonic()
        reconnects = self._health.reconnects + (1 if self._health.frames or self._health.failures else 0)
        self._health = replace(self._health, connected=True, reconnects=reconnects, last_error=None)
        logger.info("camera %s: stream open", self.url)
        return True

    def read(self) -> Frame:
        """The next frame, or a miss after at most a short wait while the stream is down."""
        if self._stop.is_set():
            return Frame(None, self._now_ms())
        if self._cap is None:
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                self._stop.wait(min(wait, MAX_IDLE_WAIT_S))
                return Frame(None, self._now_ms())
            if not self._open():
                return Frame(None, self._now_ms())
        assert self._cap is not None
        if self._frame_period:
            delay = self._next_due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            self._next_due = max(self._next_due + self._frame_period, time.monotonic() - self._frame_period)
        ok, image = self._cap.read()
        now_ms = self._now_ms()
        if not ok or image is None:
            self._fail("end of file" if self._is_file else "read failed")
            if self._is_file:
                self._retry_at = time.monotonic()  # loop a file at once
                self._backoff = INITIAL_BACKOFF_S
            return Frame(None, now_ms)
        self._backoff = INITIAL_BACKOFF_S
        self._health = replace(self._health, frames=self._health.frames + 1, last_frame_ms=now_ms)
        return Frame(image, now_ms)

    def close(self) -> None:
        """Release the capture."""
        self._stop.set()
        if self._cap is not None:
            self._cap.release()
            self._cap = None
