"""Residents' photos over Open311 on SQLite and PostgreSQL: faces blurred before storing, readable by the filer only."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from edge.camera.config import PrivacyConfig
from edge.camera.privacy import Image
from hub.cases.media import PhotoRefusedError, PhotoStore, decode_upload
from hub.context import need
from tests.edge.camera.test_privacy import FACE, alt_faces_on_face, lbp_on_face
from tests.hub.cases.conftest import CasesEnv

POINT = {"lat": 39.91, "long": 116.445}  # grid 2 of the example city


@pytest.fixture(scope="module")
def astronaut() -> Image:
    """A real photograph of a person (shipped in the scikit-image wheel)."""
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)  # type: ignore[no-untyped-call]


def png(image: Image) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return bytes(buf.tobytes())


def decode(jpeg: bytes) -> Image:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def face_region(image: Image) -> Image:
    x, y, w, h = FACE
    return image[y : y + h, x : x + w]


def sharpness(image: Image) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_resident_photo_is_stored_with_the_face_blurred_and_shown_to_the_filer_only(
    live: CasesEnv, astronaut: Image
) -> None:
    assert lbp_on_face(astronaut) and alt_faces_on_face(astronaut)  # the detectors see the face when it is there
    media = "data:image/png;base64," + base64.b64encode(png(astronaut)).decode()
    resident, op = live.client(), live.client("op1")
    resident.headers["Authorization"] = f"Bearer {need(live.ctx.services.tokens, 'tokens').issue_token('r1', 'test')}"
    filed = resident.post(
        "/open311/v2/requests.json",
        json={"service_code": "facilities", "description": "broken bench", "media": media, **POINT},
    )
    assert filed.status_code == 201, filed.text
    request_id = filed.json()[0]["service_request_id"]

    [mine] = resident.get("/open311/v2/requests.json", params={"mine": "true"}).json()
    assert mine["service_request_id"] == request_id and mine["status"] == "open"
    assert mine["media_url"] == f"/open311/v2/requests/{request_id}/media.jpg"
    photo = resident.get(mine["media_url"])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    staff = live.client()
    staff.headers["Authorization"] = f"Bearer {need(live.ctx.services.tokens, 'tokens').issue_token('op1', 'test')}"
    assert staff.get(mine["media_url"]).content == photo.content  # staff who may see the case
    anonymous = live.client()
    assert anonymous.get(mine["media_url"]).status_code == 404
    [public] = anonymous.get(f"/open311/v2/requests/{request_id}.json").json()
    assert "media_url" not in public

    # the stored bytes are the filtered ones, named in the report's audit entry
    sha = hashlib.sha256(photo.content).hexdigest()
    report = op.get(f"/api/v1/cases/{request_id}/audit").json()[0]
    assert report["evidence"] == [sha]
    stored = decode((live.ctx.data_dir / "resident-photos" / f"{sha}.jpg").read_bytes())
    assert stored.shape == astronaut.shape
    assert lbp_on_face(stored) == [] and alt_faces_on_face(stored) == []
    assert sharpness(face_region(stored)) < sharpness(face_region(astronaut)) / 10
    diff = np.abs(face_region(stored).astype(int) - face_region(astronaut).astype(int)).mean()
    assert diff > 10  # the face region changed, not just recompressed
    outside = np.abs(stored[300:, 300:].astype(int) - astronaut[300:, 300:].astype(int)).mean()
    assert outside < 6  # the rest of the photo still shows the problem


def test_unreadable_photos_are_refused_and_nothing_is_filed(live: CasesEnv) -> None:
    client = live.client()
    before = len(live.svc.list_cases())
    for media, status in (("not base64!", 400), (base64.b64encode(b"GIF89a not really").decode(), 400)):
        refused = client.post("/open311/v2/requests.json", json={"service_code": "facilities", "media": media, **POINT})
        assert refused.status_code == status and refused.json()[0]["code"] == status
    assert len(live.svc.list_cases()) == before
    assert client.get("/open311/v2/requests.json", params={"mine": "true"}).status_code == 403


def test_a_filter_that_cannot_detect_faces_stores_the_photo_fully_pixelated(tmp_path: Path, astronaut: Image) -> None:
    store = PhotoStore(tmp_path, PrivacyConfig(cascade_dir=str(tmp_path / "no-models")))
    kept = store.put(png(astronaut))
    assert kept.status == "pixelated"
    stored = store.get(kept.sha256)
    assert stored is not None and hashlib.sha256(stored).hexdigest() == kept.sha256
    image = decode(stored)
    assert sharpness(image) < sharpness(astronaut) / 20  # nothing in it is recognisable, faces included
    assert store.get("../../etc/passwd") is None


def test_oversized_uploads_are_refused_before_decoding() -> None:
    with pytest.raises(PhotoRefusedError) as refused:
        decode_upload("A" * (12 * 1024 * 1024))
    assert refused.value.status == 413
