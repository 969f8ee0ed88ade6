"""Open311 GeoReport v2 as an independent client sees it: stdlib urllib, form-encoded POST, JSON GETs."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

from tests.hub.cases.conftest import CasesEnv


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.read())


def post_form(url: str, fields: dict[str, str]) -> tuple[int, Any]:
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_resident_files_and_follows_a_request(live: CasesEnv) -> None:
    base = f"{live.base_url}/open311/v2"
    services = get_json(f"{base}/services.json")
    codes = {s["service_code"] for s in services}
    assert {"fire_safety", "environment_sanitation", "general"} <= codes
    assert all(s["metadata"] is False and s["type"] == "realtime" for s in services)

    status, body = post_form(
        f"{base}/requests.json",
        {
            "api_key": "demo",
            "service_code": "environment_sanitation",
            "lat": "39.91",
            "long": "116.445",
            "address_string": "Building 7, Yonganli",
            "email": "resident@example.org",
            "description": "Rubbish piled up next to the bike shed",
        },
    )
    assert status == 201
    request_id = body[0]["service_request_id"]

    [req] = get_json(f"{base}/requests/{request_id}.json")
    assert req["status"] == "open" and req["service_code"] == "environment_sanitation"
    assert req["address_id"] == "110105001001002"  # located by polygon
    assert req["long"] == 116.445 and req["agency_responsible"] == "Community service centre"
    requested = datetime.fromisoformat(req["requested_datetime"])
    expected = datetime.fromisoformat(req["expected_datetime"])
    assert requested.isoformat() == "2026-11-23T10:00:00+08:00"
    # 2h dispatch + 4h accept + 3 working days (7.5 h each) = 28.5 working hours from Monday 10:00
    assert expected.isoformat() == "2026-11-26T17:30:00+08:00"

    op, sup, w2 = live.client("op1"), live.client("sup1"), live.client("w2")
    cid = int(request_id)
    for client, action, body_json in (
        (op, "register", {}),
        (op, "dispatch", {}),
        (w2, "accept", {}),
        (w2, "handle", {}),
        (w2, "feedback", {"note": "Bin 7 lock broken", "public_note": "Cleared by the sanitation team."}),
        (sup, "verify", {"result": "pass"}),
        (sup, "close", {}),
    ):
        assert client.post(f"/api/v1/cases/{cid}/{action}", json=body_json).status_code == 200
    [req] = get_json(f"{base}/requests/{request_id}.json")
    assert req["status"] == "closed"
    # only the note written for residents is shown; the internal one (the leak of issue #21) is not
    assert "Cleared by the sanitation team." in req["status_notes"]
    assert "Bin 7" not in json.dumps(req)
    listed = get_json(f"{base}/requests.json?status=closed&service_code=environment_sanitation")
    assert [r["service_request_id"] for r in listed] == [request_id]
    assert get_json(f"{base}/requests.json?status=open") == []


def test_json_post_and_spec_errors(live: CasesEnv) -> None:
    base = f"{live.base_url}/open311/v2"
    with live.client() as client:
        ok = client.post(f"{base}/requests.json", json={"service_code": "general", "lat": 39.905, "long": 116.455})
        assert ok.status_code == 201
        case = live.svc.get(int(ok.json()[0]["service_request_id"]))
        assert case["grid"] == "110105001001003" and case["source"] == "resident"
        missing = client.post(f"{base}/requests.json", data={"lat": "39.9"})
        assert missing.status_code == 400 and missing.json()[0]["code"] == 400
        outside = client.post(f"{base}/requests.json", data={"service_code": "general", "lat": "10", "long": "10"})
        assert outside.status_code == 400 and "outside" in outside.json()[0]["description"]
        unknown = client.post(f"{base}/requests.json", data={"service_code": "nope", "lat": "39.9", "long": "116.4"})
        assert unknown.status_code == 404
        assert client.get(f"{base}/requests/12345.json").status_code == 404
