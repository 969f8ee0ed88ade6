"""Motion detection: MOG2 background subtraction on a small grey frame, blobs as boxes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy.typing as npt

#: Images as OpenCV returns them (uint8 in practice; cv2 stubs type them loosely).
GrayImage = npt.NDArray[Any]
#: (x, y, w, h) in pixels of the image the detector saw.
PixelBox = tuple[int, int, int, int]

#: MOG2 marks shadows 127 and foreground 255; only the latter is motion.
_FOREGROUND = 200


@dataclass(frozen=True, slots=True)
class MotionResult:
    """What moved in one frame: share of moving pixels and the moving blobs."""

    ratio: float
    boxes: tuple[PixelBox, ...]
    #: Moving pixels (255) at the detector's resolution; None when nothing moved.
    mask: GrayImage | None = None


class MotionDetector:
    """MOG2 on a downscaled grey frame; ignores noise speckle and blobs smaller than ``min_area``."""

    def __init__(self, min_area: float = 0.002, history: int = 300, var_threshold: float = 25.0) -> None:
        self.min_area = min_area
        self._mog = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=var_threshold)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def reset(self) -> None:
        """Forget the background (after a stream outage or a camera move)."""
        history = self._mog.getHistory()
        var = self._mog.getVarThreshold()
        self._mog = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=var)

    def apply(self, gray: GrayImage) -> MotionResult:
        """Update the background with ``gray`` and return what moved."""
        raw = self._mog.apply(gray)
        _, mask = cv2.threshold(raw, _FOREGROUND, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        mask = cv2.dilate(mask, self._kernel, iterations=2)
        total = float(mask.shape[0] * mask.shape[1])
        ratio = float(cv2.countNonZero(mask)) / total
        if ratio == 0.0:
            return MotionResult(0.0, ())
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_px = self.min_area * total
        boxes = tuple(
            (int(x), int(y), int(w), int(h))
            for x, y, w, h in (cv2.boundingRect(c) for c in contours)
            if w * h >= min_px
        )
        return MotionResult(ratio, boxes, mask)
