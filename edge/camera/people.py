"""People detection: OpenCV's HOG default people detector, run only on regions that matter, at their scale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge.camera.motion import GrayImage, PixelBox
from edge.camera.scale import HOG_PERSON_PX

#: HOG window of the default people detector.
WIN_W, WIN_H = 64, 128


@dataclass(frozen=True, slots=True)
class SearchRegion:
    """Where to look (native pixels) and by how much to scale that crop before HOG sees it."""

    box: PixelBox
    scale: float


def _union(a: PixelBox, b: PixelBox) -> PixelBox:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)


def _touch(a: PixelBox, b: PixelBox) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def merge(regions: Sequence[SearchRegion], width: int, height: int) -> list[SearchRegion]:
    """Union overlapping regions until none overlap (the finer scale wins), clipped to the image."""
    pending = list(regions)
    merged = True
    while merged:
        merged = False
        out: list[SearchRegion] = []
        for r in pending:
            for i, o in enumerate(out):
                if _touch(r.box, o.box):
                    out[i] = SearchRegion(_union(r.box, o.box), max(r.scale, o.scale))
                    merged = True
                    break
            else:
                out.append(r)
        pending = out
    result = []
    for r in pending:
        x, y, w, h = r.box
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + w), min(height, y + h)
        if x1 > x0 and y1 > y0:
            result.append(SearchRegion((x0, y0, x1 - x0, y1 - y0), r.scale))
    return result


def expand(box: PixelBox, min_person_px: float, width: int, height: int) -> PixelBox:
    """Grow a blob (native pixels) so a person standing in it, at least ``min_person_px`` tall, fits a window."""
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    # The window is 128/96 of the person's height; a margin lets the sliding window centre on them.
    window_h = min_person_px * WIN_H / HOG_PERSON_PX
    new_h = max(h * 1.4, window_h * 1.25)
    new_w = max(w * 1.5, new_h * 0.6, window_h * 0.75)
    x0 = int(max(0, cx - new_w / 2))
    y0 = int(max(0, cy - new_h / 2))
    return (x0, y0, int(min(width, cx + new_w / 2)) - x0, int(min(height, cy + new_h / 2)) - y0)


class PeopleDetector:
    """HOG people detector over search regions of a frame; boxes come back in the frame's pixels."""

    def __init__(self, hit_threshold: float = 0.0, pyramid_scale: float = 1.1) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
        self.hit_threshold = hit_threshold
        self.pyramid_scale = pyramid_scale

    def detect(self, frame: GrayImage, regions: Sequence[SearchRegion]) -> list[PixelBox]:
        """People found inside ``regions`` (already expanded); overlapping hits are suppressed."""
        height, width = frame.shape[:2]
        found: list[PixelBox] = []
        weights: list[float] = []
        for region in merge(regions, width, height):
            x, y, w, h = region.box
            s = region.scale
            if w * s < WIN_W or h * s < WIN_H:
                continue
            crop = frame[y : y + h, x : x + w]
            if crop.ndim == 3:
                crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            if s != 1.0:
                size = (max(WIN_W, round(w * s)), max(WIN_H, round(h * s)))
                crop = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
            rects, scores = self._hog.detectMultiScale(
                np.ascontiguousarray(crop),
                hitThreshold=self.hit_threshold,
                winStride=(8, 8),
                padding=(8, 8),
                scale=self.pyramid_scale,
            )
            for (rx, ry, rw, rh), score in zip(rects, np.asarray(scores).reshape(-1), strict=False):
                found.append((int(x + rx / s), int(y + ry / s), int(rw / s), int(rh / s)))
                weights.append(float(score))
        if len(found) <= 1:
            return found
        keep = cv2.dnn.NMSBoxes([list(b) for b in found], weights, 0.0, 0.3)
        return [found[int(i)] for i in np.asarray(keep).reshape(-1)]
