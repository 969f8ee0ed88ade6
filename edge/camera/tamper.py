"""Tamper checks: lens covered, defocused, camera moved -- against a baseline learnt at start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.config import TamperConfig
from edge.camera.motion import GrayImage

FloatImage = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class SceneStats:
    """Cheap image statistics of one frame."""

    brightness: float
    contrast: float
    sharpness: float

    @property
    def relative_sharpness(self) -> float:
        """Sharpness normalised by contrast, so lighting changes do not look like defocus."""
        return self.sharpness / max(self.contrast * self.contrast, 1.0)


@dataclass(frozen=True, slots=True)
class TamperState:
    """The tamper conditions seen now (before debouncing)."""

    covered: bool
    defocused: bool
    moved: bool
    shift_px: float
    learning: bool


def scene_stats(gray: GrayImage) -> SceneStats:
    """Mean, standard deviation and Laplacian variance of a grey frame."""
    mean, std = cv2.meanStdDev(gray)
    lap = cv2.Laplacian(gray, cv2.CV_16S, ksize=3)
    _, lap_std = cv2.meanStdDev(lap)
    return SceneStats(float(mean[0, 0]), float(std[0, 0]), float(lap_std[0, 0]) ** 2)


#: A moved camera's shift agrees with the previous check's within this share of the width...
STEADY_SHIFT: Final = 0.01
#: ...for this many checks in a row before it counts (the raise then waits ``min_s`` as well).
STEADY_CHECKS: Final = 2
#: Small grey frames kept while learning the reference view (thinned out evenly beyond this).
MAX_LEARN_FRAMES: Final = 64


class TamperMonitor:
    """Learns a sharpness baseline and a reference view, then compares each checked frame with them."""

    def __init__(self, config: TamperConfig) -> None:
        self.config = config
        self._learn_until_ms: int | None = None
        self._samples: list[float] = []
        self._baseline: float | None = None
        self._reference: FloatImage | None = None
        self._frames: list[FloatImage] = []
        self._window: FloatImage | None = None
        #: The shift of the last check that looked moved, and how many checks in a row agreed with it.
        self._last_shift: tuple[float, float] | None = None
        self._agreeing = 0

    @property
    def baseline(self) -> float | None:
        """Learnt relative sharpness of the healthy view, once known."""
        return self._baseline

    def restart_learning(self) -> None:
        """Learn the baseline and reference again (after an outage or reconfiguration)."""
        self._learn_until_ms = None
        self._samples.clear()
        self._frames.clear()
        self._baseline = None
        self._reference = None

    def _steadily_moved(self, looks_moved: bool, dx: float, dy: float, current: FloatImage) -> bool:
        """A camera knocked aside stays where it was pushed: the same shift, check after check. A person
        standing in front, whose pixels the mask misses, makes phase correlation name a shift that
        wanders with them by several pixels between checks; such a shift is not a moved camera."""
        if not looks_moved:
            self._last_shift, self._agreeing = None, 0
            return False
        last = self._last_shift
        tolerance = STEADY_SHIFT * current.shape[1]
        if last is not None and abs(dx - last[0]) <= tolerance and abs(dy - last[1]) <= tolerance:
            self._agreeing += 1
        else:
            self._agreeing = 0
        self._last_shift = (dx, dy)
        return self._agreeing >= STEADY_CHECKS

    def check(self, stats: SceneStats, tiny: GrayImage, now_ms: int, ignore: GrayImage | None = None) -> TamperState:
        """Compare one frame (its stats and a small grey copy) with the baseline.

        ``ignore`` marks pixels (non-zero) of people and motion: they are taken
        from the reference so a person standing close to the lens does not look
        like a moved camera.
        """
        cfg = self.config
        covered = stats.brightness < cfg.covered_brightness or stats.contrast < cfg.covered_contrast
        current = tiny.astype(np.float32)
        if self._window is None or self._window.shape != current.shape:
            self._window = cv2.createHanningWindow((current.shape[1], current.shape[0]), cv2.CV_32F)
        if self._baseline is None or self._reference is None:
            if self._learn_until_ms is None:
                self._learn_until_ms = now_ms + int(cfg.learn_s * 1000)
            if not covered:
                self._samples.append(stats.relative_sharpness)
                if len(self._frames) >= MAX_LEARN_FRAMES:
                    del self._frames[::2]  # keep the span, halve the density
                self._frames.append(current)
            if now_ms >= self._learn_until_ms and self._samples:
                self._baseline = float(np.median(self._samples))
                self._samples.clear()
                # The per-pixel median of the learning frames is the empty scene: people walking
                # through it while the box starts must not become part of the reference view
                # (an averaged reference kept their ghosts and later read as a moved camera).
                self._reference = np.median(np.stack(self._frames), axis=0).astype(np.float32)
                self._frames.clear()
            return TamperState(covered, False, False, 0.0, True)
        if covered:
            return TamperState(True, False, False, 0.0, False)
        if ignore is not None and cv2.countNonZero(ignore) < 0.4 * ignore.size:
            # A change over most of the frame is what we look for, so it is never ignored.
            current = np.where(ignore > 0, self._reference, current).astype(np.float32)
        (dx, dy), response = cv2.phaseCorrelate(_structure(self._reference), _structure(current), self._window)
        shift = float((dx * dx + dy * dy) ** 0.5)
        moved = self._steadily_moved(shift > cfg.moved_fraction * current.shape[1] and response > 0.02, dx, dy, current)
        defocused = stats.relative_sharpness < cfg.defocus_ratio * self._baseline
        if not moved and not defocused and shift < 1.0 and (ignore is None or not ignore.any()):
            # Follow slow changes (lighting, seasons) only while the view is healthy.
            self._baseline = 0.99 * self._baseline + 0.01 * stats.relative_sharpness
            self._reference = 0.98 * self._reference + 0.02 * current
        return TamperState(False, defocused, moved, shift, False)


def _structure(image: FloatImage) -> FloatImage:
    """The image's edges and texture without its lighting (each pixel minus its neighbourhood's mean,
    scaled by the neighbourhood's contrast): a view whose light changed while a tamper kept the
    reference from following it still lines up with it, where the raw grey levels, clipped in the
    highlights, made phase correlation find a steady false shift."""
    mean: FloatImage = cv2.GaussianBlur(image, (0, 0), 4.0)
    spread: FloatImage = cv2.GaussianBlur((image - mean) ** 2, (0, 0), 4.0)
    structure: FloatImage = ((image - mean) / np.sqrt(spread + 25.0)).astype(np.float32)
    return structure
