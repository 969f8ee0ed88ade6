"""Levels on a real hub (mosquitto, SQLite): each person sees exactly their subtree; the district rolls up.

Two streets of one district, a smoke sensor and a camera per grid, one smoke alarm in street 2
(it becomes an incident and a dispatched case) and a reported case in street 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.context import PLUGINS
from simulators.servers import Mosquitto, wait_until
from tests.hub.conftest import FirstStreamEvent, HubFactory
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

pytestmark = pytest.mark.integration


@pytest.fixture
def site(make_hub: HubFactory, mosquitto: Mosquitto, tmp_path: Path) -> Iterator[DistrictSite]:
    data_dir = tmp_path / "district-hub"
    data_dir.mkdir()
    communities = prepare(data_dir)
    hub = make_hub(data_dir=data_dir, plugins=PLUGINS)
    s = DistrictSite(hub, communities, issue_tokens(hub))
    box = DeviceBox(mosquitto.port)
    try:
        populate(s, box)
        yield s
    finally:
        box.close()


def test_a_street_supervisor_sees_only_their_street(site: DistrictSite) -> None:
    with site.api("s1-sup-street") as client:
        devices = client.get("/api/v1/devices").json()
        assert devices and all(d["grid"].startswith(STREET_1) for d in devices)
        assert len(devices) == 6  # 3 grids x (smoke + camera)
        street_2_device = next(d["id"] for d in site.devices() if d["grid"].startswith(STREET_2))
        assert client.get(f"/api/v1/devices/{street_2_device}").status_code == 404
        assert client.get("/api/v1/incidents").json() == []  # the only alarm is in street 2
        cases = client.get("/api/v1/cases").json()
        assert [c["grid"][:9] for c in cases] == [STREET_1]
        evaluation = client.get("/api/v1/evaluation", params={"by": "street"}).json()
        assert [g["key"] for g in evaluation["groups"]] == [STREET_1] and evaluation["scoped"]
        assert client.get("/api/v1/evaluation", params={"area": STREET_2}).status_code == 404
        assert {a["code"] for a in client.get("/api/v1/grids").json()} >= {DISTRICT, STREET_1}
        assert not any(a["code"].startswith(STREET_2) for a in client.get("/api/v1/grids").json())
        cameras = client.get("/api/v1/cameras").json()
        assert cameras["summary"]["total"] == 3 and all(c["grid"].startswith(STREET_1) for c in cameras["items"])

        root = client.get("/api/v1/levels").json()
        assert [u["code"] for u in root["units"]] == [STREET_1]  # their street is their top
        assert client.get("/api/v1/levels", params={"area": DISTRICT}).status_code == 404
        assert client.get("/api/v1/levels", params={"area": STREET_2}).status_code == 404
        street = client.get("/api/v1/levels", params={"area": STREET_1}).json()
        assert [p["code"] for p in street["path"]] == [STREET_1]  # the district above is not theirs to open
        assert street["area"]["open_cases"] == 1 and street["area"]["active_alarms"] == 0
    with site.api("s2-sup-street") as client:
        assert [i["grid"][:9] for i in client.get("/api/v1/incidents").json()] == [STREET_2]
        assert all(c["grid"].startswith(STREET_2) for c in client.get("/api/v1/cases").json())


def test_the_district_rolls_up_both_streets(site: DistrictSite) -> None:
    with site.api("sup-district") as client:
        root = client.get("/api/v1/levels").json()
        assert [u["code"] for u in root["units"]] == [DISTRICT]
        district = client.get("/api/v1/levels", params={"area": DISTRICT}).json()
        s1, s2 = district["units"]
        assert (s1["code"], s1["name"], s1["level"]) == (STREET_1, "Lingyin Street", "street")
        assert (s1["devices"], s1["active_alarms"], s1["open_cases"]) == (6, 0, 1)
        assert (s2["devices"], s2["active_alarms"], s2["open_cases"]) == (6, 1, 1)
        total = district["area"]
        assert (total["devices"], total["active_alarms"], total["open_cases"]) == (12, 1, 2)
        community = client.get("/api/v1/levels", params={"area": f"{STREET_2}001"}).json()
        assert [p["code"] for p in community["path"]] == [DISTRICT, STREET_2, f"{STREET_2}001"]
        assert [u["level"] for u in community["units"]] == ["grid"] * 3
        assert sum(u["active_alarms"] for u in community["units"]) == 1
        evaluation = client.get("/api/v1/evaluation", params={"by": "street", "area": DISTRICT}).json()
        assert [(g["key"], g["cases"]) for g in evaluation["groups"]] == [(STREET_1, 1), (STREET_2, 1)]
        assert client.get("/api/v1/cameras", params={"limit": 4}).json()["summary"]["total"] == 6
    with site.api("operator-01") as client:  # the command centre: every district
        assert [u["code"] for u in client.get("/api/v1/levels").json()["units"]] == [DISTRICT]
    with site.api("s1-gw-001") as client:
        assert client.get("/api/v1/levels").status_code == 403  # the drill-down is for managers


def test_the_live_stream_carries_only_the_street_supervisors_street(site: DistrictSite, mosquitto: Mosquitto) -> None:
    url = f"{site.url}/api/v1/stream?kinds=incident"
    stream = FirstStreamEvent(url, {"Authorization": f"Bearer {site.tokens['s1-sup-street']}"}).start()
    ctx = site.hub.ctx
    assert ctx is not None
    wait_until(lambda: len(ctx.bus._subs) >= 1, what="SSE subscribed")
    sensors = [d for d in site.devices() if d["kind"] == "sensor"]
    street_2 = [d for d in sensors if d["grid"].startswith(STREET_2)][-1]  # not the one already alarmed
    street_1 = next(d for d in sensors if d["grid"].startswith(STREET_1))
    box = DeviceBox(mosquitto.port)
    try:
        box.alarm(street_2["site"], street_2["id"])
        with site.api("operator-01") as client:  # the street-2 incident is stored before street 1's is raised
            wait_until(lambda: len(client.get("/api/v1/incidents").json()) == 2, what="second street-2 incident")
        box.alarm(street_1["site"], street_1["id"])
        first = stream.wait()
    finally:
        box.close()
    assert first is not None and first["device_id"] == street_1["id"]  # street 2's change never reached them
