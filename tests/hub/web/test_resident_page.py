"""The resident page in real headless Chromium against a real hub: report with a photo and a map point, follow it.

A resident of a generated 3-grid community signs in with their token on a phone-sized
page, picks a category, attaches a photograph with a face, taps a grid on the map and
sends it over Open311. The page must show the request id and list the request with its
status and photo; the photo the hub stored must have the face blurred (independent face
detectors find nothing on the face, which is far less sharp than in the original).
Screenshots go to ``test-artifacts/resident-page/`` (and, with ``GS_UPDATE_SCREENSHOTS=1``,
to docs/img/ for the docs).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest

from edge.camera.privacy import HaarFaceDetector, Image
from simulators.servers import wait_until
from tests.edge.camera.test_privacy import FACE, alt_faces_on_face, lbp_on_face, overlaps_face
from tests.hub.cases.test_open311_media import astronaut, decode, face_region, png, sharpness
from tests.hub.web.conftest import Site, start_site

pytestmark = pytest.mark.integration
__all__ = ["astronaut"]  # the photograph fixture, shared with the Open311 media tests

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts" / "resident-page"
DOCS_SHOT = REPO / "docs" / "img" / "resident-page.png"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = start_site(tmp_path_factory.mktemp("resident-hub"), ("res-002", "sup-01"))
    yield site
    site.hub.stop()


def test_resident_files_a_report_with_a_photo_and_follows_it(
    browser: Any, site: Site, astronaut: Image, tmp_path: Path
) -> None:
    # guards: every detector used below does see the face in the original photograph
    assert any(overlaps_face(b) for b in HaarFaceDetector()(astronaut))
    assert lbp_on_face(astronaut) and alt_faces_on_face(astronaut)
    photo = tmp_path / "bench-and-me.png"
    photo.write_bytes(png(astronaut))

    context = browser.new_context(viewport=PHONE, locale="en-US", is_mobile=True, has_touch=True)
    context.add_init_script("localStorage.setItem('gs.lang', 'en')")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{site.url}/resident?token={site.tokens['res-002']}")
    page.locator("body[data-ready]").wait_for(state="attached", timeout=10_000)
    assert "token" not in page.url
    assert page.locator("#requests li.empty").inner_text() == "You have not reported anything yet."
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling

    form = page.locator("#report")
    form.locator('[name="service_code"]').select_option("facilities")
    form.locator('[name="description"]').fill("Broken bench by the east gate")
    form.locator('[name="photo"]').set_input_files(str(photo))
    page.locator('#preview[data-ready="1"]').wait_for(timeout=5000)
    form.locator('button[type="submit"]').click()
    assert page.locator("#report-status").inner_text() == "Tap the map to show where it is."
    page.locator(f'#map polygon[data-grid="{site.grids[1]}"]').tap()
    page.locator("#map circle.pin").wait_for(timeout=2000)
    form.locator('button[type="submit"]').click()
    page.locator("#report-status.ok").wait_for(timeout=15_000)
    request_id = page.locator("#report-status").get_attribute("data-request-id")
    assert request_id
    assert page.locator("#report-status").inner_text() == f"Thank you. Your request number is {request_id}."

    item = page.locator(f'#requests li[data-request="{request_id}"]')
    item.wait_for(timeout=5000)
    assert item.get_attribute("data-status") == "open"
    assert item.locator(".status").inner_text() == "Open"
    assert "Broken bench by the east gate" in item.locator(".meta").inner_text()
    wait_until(lambda: item.locator("img").evaluate("i => i.naturalWidth") > 0, timeout=5, what="photo shown")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "resident-filed.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("GS_UPDATE_SCREENSHOTS"):  # refresh the docs' picture on purpose only
        DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SHOT)

    page.click("#lang")
    assert item.locator(".status").inner_text() == "办理中"
    assert page.locator("h1").inner_text() == "随手拍·问题上报"

    # the case: filed as the resident, located in the tapped grid, photo named in its trail
    with site.api("sup-01") as staff:
        case = staff.get(f"/api/v1/cases/{request_id}").json()
        trail = staff.get(f"/api/v1/cases/{request_id}/audit").json()
    assert (case["reporter"], case["grid"], case["source"]) == ("res-002", site.grids[1], "resident")
    [sha] = trail[0]["evidence"]
    stored_bytes = (site.data_dir / "resident-photos" / f"{sha}.jpg").read_bytes()
    assert hashlib.sha256(stored_bytes).hexdigest() == sha
    stored = decode(stored_bytes)
    assert stored.shape == astronaut.shape  # the page sends it at full size (under its 1600 px cap)
    assert not any(overlaps_face(b) for b in HaarFaceDetector()(stored))
    assert lbp_on_face(stored) == [] and alt_faces_on_face(stored) == []
    assert sharpness(face_region(stored)) < sharpness(face_region(astronaut)) / 10
    x, y, w, h = FACE
    assert cv2.absdiff(stored[y : y + h, x : x + w], astronaut[y : y + h, x : x + w]).mean() > 10
    assert errors == []
