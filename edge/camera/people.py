"""People detection: OpenCV's HOG default people detector, run only on regions that matter."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge.camera.motion import GrayImage, PixelBox

#: HOG window of the default people detector.
WIN_W, WIN_H = 64, 128


def _merge(boxes: Sequence[PixelBox], width: int, height: int) -> list[PixelBox]:
    """Union overlapping regions until none overlap, clipped to the image."""
    regions = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        out: list[list[int]] = []
        for r in regions:
            for o in out:
                if r[0] < o[0] + o[2] and o[0] < r[0] + r[2] and r[1] < o[1] + o[3] and o[1] < r[1] + r[3]:
                    x0, y0 = min(r[0], o[0]), min(r[1], o[1])
                    x1, y1 = max(r[0] + r[2], o[0] + o[2]), max(r[1] + r[3], o[1] + o[3])
                    o[:] = [x0, y0, x1 - x0, y1 - y0]
                    merged = True
                    break
            else:
                out.append(r)
        regions = out
    result = []
    for x, y, w, h in regions:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + w), min(height, y + h)
        result.append((x0, y0, x1 - x0, y1 - y0))
    return result


def expand(box: PixelBox, width: int, height: int) -> PixelBox:
    """Grow a blob so a person standing in it fits a HOG window with margin."""
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    new_h = max(h * 1.5, WIN_H + 32)
    new_w = max(w * 1.6, new_h * 0.6, WIN_W + 32)
    x0 = int(max(0, cx - new_w / 2))
    y0 = int(max(0, cy - new_h / 2))
    return (x0, y0, int(min(width, cx + new_w / 2)) - x0, int(min(height, cy + new_h / 2)) - y0)


class PeopleDetector:
    """HOG people detector over the given regions of a grey image (boxes in that image's pixels)."""

    def __init__(self, hit_threshold: float = 0.0, scale: float = 1.08) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
        self.hit_threshold = hit_threshold
        self.scale = scale

    def detect(self, gray: GrayImage, regions: Sequence[PixelBox]) -> list[PixelBox]:
        """People found inside ``regions`` (already expanded); overlapping hits are suppressed."""
        height, width = gray.shape[:2]
        found: list[PixelBox] = []
        weights: list[float] = []
        grown = [expand(r, width, height) for r in regions]
        for x, y, w, h in _merge(grown, width, height):
            if w < WIN_W or h < WIN_H:
                continue
            crop = np.ascontiguousarray(gray[y : y + h, x : x + w])
            rects, scores = self._hog.detectMultiScale(
                crop, hitThreshold=self.hit_threshold, winStride=(8, 8), padding=(0, 0), scale=self.scale
            )
            for (rx, ry, rw, rh), score in zip(rects, np.asarray(scores).reshape(-1), strict=False):
                found.append((int(rx + x), int(ry + y), int(rw), int(rh)))
                weights.append(float(score))
        if len(found) <= 1:
            return found
        keep = cv2.dnn.NMSBoxes([list(b) for b in found], weights, 0.0, 0.3)
        return [found[int(i)] for i in np.asarray(keep).reshape(-1)]
