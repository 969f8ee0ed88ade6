"""The snapshot filter on a real photograph, and every fail-closed path."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from skimage.feature import Cascade

from edge.camera.config import PrivacyConfig
from edge.camera.privacy import FaceFilterError, FilteredSnapshot, Image, PixelBox, PrivacyFilter, default_cascade_dir

#: Where the astronaut's face is in skimage's photograph (x, y, w, h), found by eye and by every detector.
FACE = (175, 60, 100, 110)


@pytest.fixture(scope="module")
def astronaut() -> Image:
    """A real photograph of a person, shipped inside the scikit-image wheel (no download)."""
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def filtered(astronaut: Image) -> FilteredSnapshot:
    return PrivacyFilter(PrivacyConfig(timeout_s=60)).apply(astronaut)


def decode(jpeg: bytes) -> Image:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def lbp_faces(image: Image) -> list[dict[str, int]]:
    """An independent detector: scikit-image's own LBP cascade implementation and model."""
    detector = Cascade(skimage.data.lbp_frontal_face_cascade_filename())  # type: ignore[no-untyped-call]
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    found: list[dict[str, int]] = detector.detect_multi_scale(
        img=rgb, scale_factor=1.2, step_ratio=1, min_size=(40, 40), max_size=(300, 300)
    )
    return found


def lbp_on_face(image: Image) -> list[dict[str, int]]:
    """LBP detections on the face region (the LBP model also fires on the helmet, before and after)."""
    return [f for f in lbp_faces(image) if overlaps_face((f["c"], f["r"], f["width"], f["height"]))]


def overlaps_face(box: tuple[int, int, int, int]) -> bool:
    x, y, w, h = box
    fx, fy, fw, fh = FACE
    return x < fx + fw and fx < x + w and y < fy + fh and fy < y + h


def alt_faces_on_face(image: Image) -> list[tuple[int, int, int, int]]:
    """A second check: OpenCV's 'alt' frontal cascade (not used by the filter) on the face region."""
    cascade = cv2.CascadeClassifier(str(default_cascade_dir() / "haarcascade_frontalface_alt.xml"))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    found = cascade.detectMultiScale(gray, scaleFactor=1.05, minNeighbors=3, minSize=(20, 20))
    boxes = [(int(x), int(y), int(w), int(h)) for x, y, w, h in found]
    return [b for b in boxes if overlaps_face(b)]


def test_independent_detectors_find_the_face_before_filtering(astronaut: Image) -> None:
    # Guards the test below: the detectors really do see this face when it is there.
    assert lbp_on_face(astronaut)
    assert alt_faces_on_face(astronaut)


def test_filtered_photo_has_no_face_for_independent_detectors(astronaut: Image, filtered: FilteredSnapshot) -> None:
    assert filtered.status == "sent" and filtered.faces >= 1 and filtered.jpeg is not None
    out = decode(filtered.jpeg)
    assert out.shape == astronaut.shape
    assert lbp_on_face(out) == []
    assert alt_faces_on_face(out) == []


def test_face_region_differs_strongly_and_keeps_no_detail(astronaut: Image, filtered: FilteredSnapshot) -> None:
    assert filtered.jpeg is not None
    out = decode(filtered.jpeg)
    x, y, w, h = FACE
    before = cv2.cvtColor(astronaut[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY).astype(np.float32)
    after = cv2.cvtColor(out[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY).astype(np.float32)
    assert float(np.mean(np.abs(before - after))) > 20.0
    # Eyes, nose and mouth are edges; the filtered region keeps almost none of them.
    detail_before = cv2.Laplacian(before, cv2.CV_32F).var()
    detail_after = cv2.Laplacian(after, cv2.CV_32F).var()
    assert detail_after < 0.05 * detail_before
    # Most of the photo stays as it was (apart from JPEG): the filter blurs faces, not the scene.
    diff = np.abs(astronaut.astype(np.int16) - out.astype(np.int16)).max(axis=2)
    assert float(np.mean(diff < 24)) > 0.6


def test_jpeg_has_no_exif_and_hash_matches(filtered: FilteredSnapshot) -> None:
    assert filtered.jpeg is not None
    assert filtered.jpeg.startswith(b"\xff\xd8")
    assert b"Exif" not in filtered.jpeg and b"\xff\xe1" not in filtered.jpeg[:4096]  # no APP1 segment
    assert filtered.sha256 == hashlib.sha256(filtered.jpeg).hexdigest()


def test_privacy_masks_are_burned_in(astronaut: Image) -> None:
    mask = [(0.0, 0.75), (0.3, 0.75), (0.3, 1.0), (0.0, 1.0)]
    result = PrivacyFilter(PrivacyConfig(masks=[mask]), lambda _img: []).apply(astronaut)
    assert result.jpeg is not None
    out = decode(result.jpeg)
    assert float(out[400:505, 5:145].mean()) < 5.0
    assert float(out[50:150, 300:400].mean()) > 40.0


def _assert_fully_pixelated(result: FilteredSnapshot, original: Image, reason: str) -> None:
    assert result.status == "pixelated"
    assert result.note is not None and reason in result.note
    assert result.jpeg is not None
    out = cv2.cvtColor(decode(result.jpeg), cv2.COLOR_BGR2GRAY).astype(np.float32)
    detail = cv2.Laplacian(out, cv2.CV_32F).var()
    assert (
        detail < 0.02 * cv2.Laplacian(cv2.cvtColor(original, cv2.COLOR_BGR2GRAY).astype(np.float32), cv2.CV_32F).var()
    )
    assert lbp_on_face(decode(result.jpeg)) == []


def test_missing_cascade_file_fails_closed(astronaut: Image, tmp_path: Path) -> None:
    result = PrivacyFilter(PrivacyConfig(cascade_dir=str(tmp_path))).apply(astronaut)
    _assert_fully_pixelated(result, astronaut, "missing_model")


def test_detector_raising_fails_closed(astronaut: Image) -> None:
    def broken(_image: Image) -> list[PixelBox]:
        raise cv2.error("simulated OpenCV failure")

    result = PrivacyFilter(PrivacyConfig(), broken).apply(astronaut)
    _assert_fully_pixelated(result, astronaut, "error")


def test_detector_timeout_fails_closed(astronaut: Image) -> None:
    release = threading.Event()

    def stuck(_image: Image) -> list[PixelBox]:
        release.wait(10)
        return []

    try:
        result = PrivacyFilter(PrivacyConfig(timeout_s=0.2), stuck).apply(astronaut)
    finally:
        release.set()
    _assert_fully_pixelated(result, astronaut, "timeout")


def test_withhold_policy_sends_nothing(astronaut: Image) -> None:
    def broken(_image: Image) -> list[PixelBox]:
        raise FaceFilterError("missing_model", "gone")

    result = PrivacyFilter(PrivacyConfig(on_failure="withhold"), broken).apply(astronaut)
    assert result.status == "withheld" and result.jpeg is None and result.sha256 is None
    assert result.note is not None and "missing_model" in result.note


def test_extra_regions_are_blurred_even_without_a_face(astronaut: Image) -> None:
    result = PrivacyFilter(PrivacyConfig(), lambda _img: []).apply(astronaut, [FACE])
    assert result.jpeg is not None
    assert lbp_on_face(decode(result.jpeg)) == []
