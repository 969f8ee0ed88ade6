"""Residents' photos: passed through the camera box's face filter, then stored by their SHA-256.

A photo filed with an Open311 request is decoded and run through exactly the filter
camera evidence passes (:class:`edge.camera.privacy.PrivacyFilter`: every detected face
pixelated and blurred, EXIF-free JPEG). It fails closed: a photo the filter cannot
run on is stored fully pixelated, and a hub without OpenCV (the camera extra) stores
no photo at all and refuses the request with a reason. Only the filtered bytes are
ever written, under ``data_dir/resident-photos/<sha256>.jpg``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hub.cases.errors import CaseServiceError

#: Why faces cannot be blurred on this hub (OpenCV, the camera extra, is not installed), or None.
_NO_FILTER: ImportError | None = None
try:
    import cv2
    import numpy as np

    from edge.camera.config import PrivacyConfig
    from edge.camera.privacy import PrivacyFilter
except ImportError as exc:  # a hub without the camera extra refuses photos (fail closed)
    _NO_FILTER = exc

logger = logging.getLogger(__name__)

#: Largest photo accepted, decoded (a phone JPEG; the page scales photos down before sending).
MAX_PHOTO_BYTES: Final = 8 * 1024 * 1024
_DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PhotoRefusedError(CaseServiceError):
    """A photo that is not stored; ``status`` is the HTTP status (400, 413, 503), ``reason`` a stable code."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.status = status


@dataclass(frozen=True, slots=True)
class StoredPhoto:
    """A filtered photo on disk: its hash, what the filter did (sent / pixelated) and faces blurred."""

    sha256: str
    status: str
    faces: int


def decode_upload(text: str) -> bytes:
    """The bytes of a base64 photo field (a ``data:image/...;base64,`` URL or bare base64)."""
    body = _DATA_URL.sub("", text.strip(), count=1)
    if len(body) > MAX_PHOTO_BYTES * 4 // 3 + 4:
        raise PhotoRefusedError(413, "photo_too_large", f"a photo may have at most {MAX_PHOTO_BYTES} bytes")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PhotoRefusedError(400, "bad_photo", "media must be a base64 image") from exc


class PhotoStore:
    """Filtered photos under ``data_dir/resident-photos``; the face filter is built once, on first use.

    ``privacy`` is an :class:`edge.camera.config.PrivacyConfig` (default: the camera's defaults).
    """

    def __init__(self, data_dir: Path, privacy: Any = None) -> None:
        self.root = Path(data_dir) / "resident-photos"
        self._lock = threading.Lock()
        self._privacy = privacy
        self._filter: Any = None

    def _privacy_filter(self) -> Any:
        with self._lock:
            if self._filter is None:
                if _NO_FILTER is not None:  # OpenCV is the camera extra: without it no face can be blurred
                    raise PhotoRefusedError(
                        503,
                        "photo_filter_unavailable",
                        f"this hub cannot blur faces ({_NO_FILTER}); file without a photo",
                    ) from _NO_FILTER
                self._filter = PrivacyFilter(self._privacy or PrivacyConfig())
            return self._filter

    def put(self, data: bytes) -> StoredPhoto:
        """Filter ``data`` (any image OpenCV reads) and store the result; raise :class:`PhotoRefusedError`."""
        if len(data) > MAX_PHOTO_BYTES:
            raise PhotoRefusedError(413, "photo_too_large", f"a photo may have at most {MAX_PHOTO_BYTES} bytes")
        privacy = self._privacy_filter()
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise PhotoRefusedError(400, "bad_photo", "the photo is not an image this hub can read")
        result = privacy.apply(frame)
        if result.jpeg is None or result.sha256 is None:
            raise PhotoRefusedError(503, "photo_withheld", result.note or "the face filter withheld the photo")
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / f"{result.sha256}.jpg"
        if not target.exists():
            partial = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
            partial.write_bytes(result.jpeg)
            partial.replace(target)
        logger.info("resident photo %s stored (%s, %s face(s))", result.sha256[:12], result.status, result.faces)
        return StoredPhoto(result.sha256, result.status, result.faces)

    def get(self, sha256: str) -> bytes | None:
        """The stored (filtered) JPEG, or None."""
        if not _SHA256.match(sha256):
            return None
        path = self.root / f"{sha256}.jpg"
        return path.read_bytes() if path.is_file() else None
