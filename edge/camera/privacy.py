"""The snapshot filter, fail-closed: privacy masks burned in, every detected face pixelated and blurred.

Faces are found with OpenCV's Haar cascades (frontal, and profile in both
directions) on the whole frame. If the cascades are missing, detection raises,
or it takes longer than the configured timeout, no unblurred image leaves: the
whole image is pixelated (or withheld, if so configured) and the result says so.
Images are encoded with ``cv2.imencode``, which writes no EXIF; nothing here
touches the disk.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.config import PrivacyConfig
from edge.camera.zones import Polygon

logger = logging.getLogger(__name__)

Image = npt.NDArray[Any]
PixelBox = tuple[int, int, int, int]

#: Frontal cascades (two differently trained models, for recall) and the profile cascade, last.
CASCADES: Final = (
    "haarcascade_frontalface_default.xml",
    "haarcascade_frontalface_alt2.xml",
    "haarcascade_profileface.xml",
)
#: Faces are looked for on a copy at most this wide/high (boxes are scaled back).
DETECT_MAX_SIDE: Final = 1024
#: Rotated passes see more false faces; they need more agreeing neighbours.
MIN_NEIGHBORS_TILTED: Final = 5
#: Padding around each face box, as a share of its size (hair, ears, chin).
FACE_PAD: Final = 0.35


class FaceFilterError(RuntimeError):
    """The face detector could not run; ``reason`` is a short code (missing_model, error, timeout)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FilteredSnapshot:
    """A filtered JPEG (or none) and what the filter did; ``status`` is sent, pixelated or withheld."""

    jpeg: bytes | None
    status: str
    note: str | None
    sha256: str | None
    faces: int


def default_cascade_dir() -> Path:
    """Where opencv-python ships its Haar cascades."""
    return Path(str(cv2.data.haarcascades))  # type: ignore[attr-defined]


FaceDetector = Callable[[Image], list[PixelBox]]


class HaarFaceDetector:
    """Frontal (two models) and profile Haar cascades from ``cv2.data`` (or ``cascade_dir``) on the full frame."""

    def __init__(self, cascade_dir: str | None = None) -> None:
        base = Path(cascade_dir) if cascade_dir else default_cascade_dir()
        self.error: str | None = None
        self._cascades: list[cv2.CascadeClassifier] = []
        for name in CASCADES:
            path = base / name
            cascade = cv2.CascadeClassifier(str(path)) if path.is_file() else None
            if cascade is None or cascade.empty():
                self.error = f"face model {path} is missing or unreadable"
                logger.error("privacy filter disabled: %s", self.error)
                self._cascades = []
                return
            self._cascades.append(cascade)

    @staticmethod
    def _tilted(gray: Image, cascade: cv2.CascadeClassifier) -> list[PixelBox]:
        # Heads tilted beyond ~15 degrees escape upright cascades; look again at +-20 degrees.
        return _rotated_boxes(gray, cascade, 20.0) + _rotated_boxes(gray, cascade, -20.0)

    def __call__(self, image: Image) -> list[PixelBox]:
        """Face boxes in ``image`` pixels; raises :class:`FaceFilterError` when the model is missing."""
        if self.error is not None:
            raise FaceFilterError("missing_model", self.error)
        height, width = image.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        if scale < 1.0:
            gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        small_w = gray.shape[1]
        boxes: list[PixelBox] = []
        *frontals, profile = self._cascades
        # Fine scale steps and few neighbours favour recall: a false blur costs little, a miss costs privacy.
        for cascade in frontals:
            found = cascade.detectMultiScale(gray, scaleFactor=1.08, minNeighbors=3, minSize=(20, 20))
            boxes += [(int(x), int(y), int(w), int(h)) for x, y, w, h in found]
        found = profile.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3, minSize=(20, 20))
        boxes += [(int(x), int(y), int(w), int(h)) for x, y, w, h in found]
        flipped = profile.detectMultiScale(cv2.flip(gray, 1), scaleFactor=1.1, minNeighbors=3, minSize=(20, 20))
        for x, y, w, h in flipped:
            boxes.append((int(small_w - x - w), int(y), int(w), int(h)))
        boxes += self._tilted(gray, frontals[0])
        return [(round(x / scale), round(y / scale), round(w / scale), round(h / scale)) for x, y, w, h in boxes]


def _rotated_boxes(gray: Image, cascade: cv2.CascadeClassifier, angle: float) -> list[PixelBox]:
    """Detect on ``gray`` rotated by ``angle`` degrees; boxes mapped back as upright bounding boxes."""
    height, width = gray.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    out_w, out_h = int(height * sin + width * cos), int(height * cos + width * sin)
    matrix[0, 2] += out_w / 2.0 - width / 2.0
    matrix[1, 2] += out_h / 2.0 - height / 2.0
    rotated = cv2.warpAffine(gray, matrix, (out_w, out_h), borderMode=cv2.BORDER_REPLICATE)
    inverse = cv2.invertAffineTransform(matrix)
    boxes: list[PixelBox] = []
    for x, y, w, h in cascade.detectMultiScale(
        rotated, scaleFactor=1.1, minNeighbors=MIN_NEIGHBORS_TILTED, minSize=(20, 20)
    ):
        # Map the centre back; the face keeps its size (padding later covers the tilt).
        cx, cy = inverse @ np.array([x + w / 2.0, y + h / 2.0, 1.0])
        x0, y0 = int(max(0.0, cx - w / 2.0)), int(max(0.0, cy - h / 2.0))
        boxes.append((x0, y0, int(min(width, cx + w / 2.0)) - x0, int(min(height, cy + h / 2.0)) - y0))
    return boxes


def count_distinct(boxes: Sequence[PixelBox]) -> int:
    """How many separate faces a list of (possibly overlapping, multi-detector) boxes shows."""
    clusters: list[PixelBox] = []
    for x, y, w, h in boxes:
        cx, cy = x + w / 2.0, y + h / 2.0
        if not any(ox <= cx <= ox + ow and oy <= cy <= oy + oh for ox, oy, ow, oh in clusters):
            clusters.append((x, y, w, h))
    return len(clusters)


def pixelate_region(image: Image, box: PixelBox, blocks: int = 6) -> None:
    """Replace ``box`` in place by a coarse mosaic, then blur it heavily so no detail or block edge survives."""
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return
    region = image[y : y + h, x : x + w]
    coarse = cv2.resize(region, (blocks, max(1, round(blocks * h / w))), interpolation=cv2.INTER_AREA)
    mosaic = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST)
    # Sharp mosaic edges can themselves look like a face to some detectors; a wide blur removes them.
    image[y : y + h, x : x + w] = cv2.GaussianBlur(mosaic, (0, 0), max(2.0, 0.25 * min(w, h)))


def pixelate_all(image: Image) -> Image:
    """The whole image as a mosaic too coarse to show any face (fail-closed output)."""
    height, width = image.shape[:2]
    coarse = cv2.resize(image, (16, max(1, round(16 * height / width))), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_NEAREST), (0, 0), 4)


def pad_box(box: PixelBox, width: int, height: int, pad: float = FACE_PAD) -> PixelBox:
    """Grow a face box by ``pad`` on each side (more upward for hair), clipped to the image."""
    x, y, w, h = box
    x0 = max(0, int(x - pad * w))
    y0 = max(0, int(y - 1.3 * pad * h))
    x1 = min(width, int(x + w + pad * w))
    y1 = min(height, int(y + h + pad * h))
    return (x0, y0, x1 - x0, y1 - y0)


class PrivacyFilter:
    """Masks, faces, JPEG: the one filter every image passes before it may leave the box."""

    def __init__(self, config: PrivacyConfig, detector: FaceDetector | None = None) -> None:
        self.config = config
        self._detector: FaceDetector = detector or HaarFaceDetector(config.cascade_dir)
        self._masks = [Polygon(tuple(p)) for p in config.masks]

    def _detect_with_timeout(self, image: Image) -> list[PixelBox]:
        result: list[list[PixelBox]] = []
        failure: list[BaseException] = []

        def work() -> None:
            try:
                result.append(self._detector(image))
            except BaseException as exc:  # re-raised in the caller's thread below
                failure.append(exc)

        worker = threading.Thread(target=work, name="face-filter", daemon=True)
        worker.start()
        worker.join(self.config.timeout_s)
        if worker.is_alive():
            raise FaceFilterError("timeout", f"face detection took longer than {self.config.timeout_s} s")
        if failure:
            exc = failure[0]
            if isinstance(exc, FaceFilterError):
                raise exc
            raise FaceFilterError("error", f"{type(exc).__name__}: {exc}") from exc
        return result[0]

    def _encode(self, image: Image) -> bytes:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality])
        if not ok:
            raise FaceFilterError("encode", "JPEG encoding failed")
        return bytes(buf.tobytes())

    def prepare(self, frame: Image) -> Image:
        """A scaled-down copy of ``frame`` with the privacy masks burned in."""
        height, width = frame.shape[:2]
        scale = min(1.0, self.config.max_side / max(height, width))
        if scale < 1.0:
            image = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        else:
            image = frame.copy()
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = image.shape[:2]
        for mask in self._masks:
            cv2.fillPoly(image, [np.array(mask.to_pixels(w, h), np.int32)], (0, 0, 0))
        return image

    def apply(self, frame: Image, extra_regions: Sequence[PixelBox] = ()) -> FilteredSnapshot:
        """Filter ``frame`` (BGR); ``extra_regions`` (e.g. heads of detected people) are blurred too."""
        image = self.prepare(frame)
        h, w = image.shape[:2]
        sx, sy = w / frame.shape[1], h / frame.shape[0]
        try:
            faces = self._detect_with_timeout(image)
        except FaceFilterError as exc:
            logger.warning("face filter failed (%s); failing closed with %s", exc, self.config.on_failure)
            note = f"face filter failed ({exc.reason}); "
            if self.config.on_failure == "withhold":
                return FilteredSnapshot(None, "withheld", note + "image withheld", None, 0)
            jpeg = self._encode(pixelate_all(image))
            return FilteredSnapshot(
                jpeg, "pixelated", note + "whole image pixelated", hashlib.sha256(jpeg).hexdigest(), 0
            )
        for box in faces:
            pixelate_region(image, pad_box(box, w, h))
        for x, y, bw, bh in extra_regions:
            scaled = (round(x * sx), round(y * sy), round(bw * sx), round(bh * sy))
            pixelate_region(image, pad_box(scaled, w, h, 0.1))
        jpeg = self._encode(image)
        distinct = count_distinct(faces)
        sent_note = f"{distinct} face(s) blurred" if faces else None
        return FilteredSnapshot(jpeg, "sent", sent_note, hashlib.sha256(jpeg).hexdigest(), distinct)
