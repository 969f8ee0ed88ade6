"""The level drill-down and the camera view in real headless Chromium on a two-street district hub.

A street supervisor's page shows their street only (levels, devices, case board, evaluation,
cameras); the district supervisor's drill-down rolls up both streets and opens a street, then
its community. Screenshots go to ``test-artifacts/operator-page/`` (and, with
``GS_UPDATE_SCREENSHOTS=1``, the drill-down and camera view to docs/img/).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from hub.config import HubSettings
from hub.service import Hub
from tests.hub.levels.district import (
    DISTRICT,
    STREET_1,
    STREET_2,
    DeviceBox,
    DistrictSite,
    issue_tokens,
    populate,
    prepare,
)
from tests.hub.snapshots.test_store import jpeg
from tests.hub.web.pages import REPO, Tab, open_page, shoot

pytestmark = pytest.mark.integration
DOCS_IMG = REPO / "docs" / "img"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistrictSite]:
    data_dir = tmp_path_factory.mktemp("levels-hub")
    communities = prepare(data_dir)
    hub = Hub(HubSettings(http_port=0, broker_port=0, data_dir=data_dir, client_id="levels-web-hub"))
    hub.start()
    s = DistrictSite(hub, communities, issue_tokens(hub))
    box = DeviceBox(hub.mqtt_port)
    try:
        populate(s, box)
        camera = next(d for d in s.devices() if d["kind"] == "camera" and d["grid"].startswith(STREET_2))
        box.alarm(camera["site"], camera["id"], "tamper_covered", snapshot=jpeg(3))
        yield s
    finally:
        box.close()
        hub.stop()


def texts(tab: Tab, selector: str, attr: str) -> list[str]:
    return [str(v) for v in tab.page.locator(selector).evaluate_all(f"els => els.map(e => e.dataset.{attr})")]


def keep_for_docs(shot: Any, name: str) -> None:
    if os.environ.get("GS_UPDATE_SCREENSHOTS"):  # refresh the docs' pictures on purpose only
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMG / name)


def test_a_street_supervisor_sees_only_their_street(browser: Any, site: DistrictSite) -> None:
    tab = open_page(browser, site, "s1-sup-street", view="levels")
    page = tab.page
    page.locator(f'#levels-rows[data-area="{STREET_1}"] tr.unit').first.wait_for(timeout=5000)
    assert texts(tab, "#levels-rows tr.unit", "code") == [f"{STREET_1}001"]
    assert texts(tab, "#levels-path .crumb[data-code]", "code") == [STREET_1]  # the district is not theirs
    page.click('#nav [data-view="devices"]')
    devices = texts(tab, "#devices tr", "device")
    assert len(devices) == 6 and all(d.startswith("s1-") for d in devices)
    page.click('#nav [data-view="cases"]')
    page.locator("#board article").first.wait_for(timeout=5000)
    board_grids = page.locator("#board article").evaluate_all("els => els.map(e => e.textContent)")
    assert board_grids and not any(STREET_2 in g for g in board_grids)
    page.click('#nav [data-view="evaluation"]')
    page.locator("#eval-rows tr").first.wait_for(timeout=5000)
    assert all(k.startswith(STREET_1) for k in texts(tab, "#eval-rows tr", "key"))
    page.click('#nav [data-view="cameras"]')
    page.locator("#cam-rows[data-loaded] tr.camera").first.wait_for(timeout=5000)
    cameras = texts(tab, "#cam-rows tr.camera", "camera")
    assert len(cameras) == 3 and all(c.startswith("s1-cam-") for c in cameras)
    shoot(page, "cameras-street-supervisor")
    assert tab.errors == []


def test_the_district_drills_down_both_streets(browser: Any, site: DistrictSite) -> None:
    tab = open_page(browser, site, "sup-district", view="levels")
    page = tab.page
    page.locator(f'#levels-rows[data-area="{DISTRICT}"] tr.unit').first.wait_for(timeout=5000)
    assert texts(tab, "#levels-rows tr.unit", "code") == [STREET_1, STREET_2]
    street_2 = page.locator(f'#levels-rows tr[data-code="{STREET_2}"]')
    assert street_2.locator('td[data-count="active_alarms"]').inner_text() == "2"  # smoke and the covered camera
    assert street_2.locator('td[data-count="open_cases"]').inner_text() == "2"
    keep_for_docs(shoot(page, "levels-district"), "levels-district.png")
    street_2.click()
    page.locator(f'#levels-rows[data-area="{STREET_2}"] tr.unit').first.wait_for(timeout=5000)
    page.locator(f'#levels-rows tr[data-code="{STREET_2}001"]').click()
    page.locator(f'#levels-rows[data-area="{STREET_2}001"] tr.unit').first.wait_for(timeout=5000)
    assert texts(tab, "#levels-rows tr.unit", "level") == ["grid"] * 3
    assert texts(tab, "#levels-path .crumb[data-code]", "code") == [DISTRICT, STREET_2, f"{STREET_2}001"]
    page.click("#lang")
    assert page.locator('#nav [data-view="levels"]').inner_text() == "层级"
    page.click("#lang")

    page.click('#nav [data-view="cameras"]')
    page.locator("#cam-rows[data-loaded] tr.camera").first.wait_for(timeout=5000)
    assert len(texts(tab, "#cam-rows tr.camera", "camera")) == 6
    page.select_option('#cam-filter [name="state"]', "tamper")
    page.wait_for_function("document.querySelectorAll('#cam-rows tr.camera').length === 1", timeout=5000)
    [tampered] = texts(tab, "#cam-rows tr.camera", "camera")
    assert tampered.startswith("s2-cam-")
    assert "covered" in page.locator("#cam-rows tr.camera td.tamper").inner_text()
    # the latest redacted snapshot as a thumbnail, fetched with the token (supervisors see their area's evidence)
    page.locator('#cam-rows tr.camera td.thumb img[src^="blob:"]').wait_for(timeout=5000)
    page.select_option('#cam-filter [name="state"]', "")
    page.wait_for_function("document.querySelectorAll('#cam-rows tr.camera').length === 6", timeout=5000)
    page.wait_for_function(
        "[...document.querySelectorAll('#cam-rows td.thumb img')].some(i => i.complete && i.naturalWidth > 0)",
        timeout=5000,
    )
    assert page.locator("#cam-rows td.stream.up").count() == 6  # each camera reported fps and stream_ok
    keep_for_docs(shoot(page, "cameras-district"), "camera-view.png")
    assert tab.errors == []
