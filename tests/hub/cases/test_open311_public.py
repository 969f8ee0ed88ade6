"""Issue #21: the public sees only what is public — Open311 through the real app, on SQLite and PostgreSQL.

Device-raised, operator-raised and resident-filed cases side by side; anonymous
readers (JSON and XML) get the public fields of the public cases only, the filer
their own request in full; anonymous filing is rate-limited per address.
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree

import httpx

from hub.cases.open311_view import FULL_FIELDS, PUBLIC_FIELDS, PublicPolicy
from hub.context import need
from hub.security.auth import BOOTSTRAP_ADMIN_ID, TokenStore
from tests.hub.cases.conftest import CasesEnv
from tests.hub.cases.test_api_flow import act, smoke_group

RESIDENT = {
    "service_code": "environment_sanitation",
    "lat": "39.91234",
    "long": "116.44567",
    "address_string": "Building 7, flat 1203",
    "email": "yang@example.org",
    "phone": "13800138000",
    "first_name": "Yang",
    "description": "Rubbish by the bike shed, call me on 13800138000",
}
SECRETS = ("yang@example.org", "13800138000", "flat 1203", "Yang", "bike shed", "smoke-3", "devices", "lock broken")


def _seed(live: CasesEnv) -> tuple[int, int, int]:
    """A device-raised case, an operator case and an anonymous resident's request, with notes."""
    device_case = live.svc.on_incident_group(smoke_group())
    assert device_case is not None
    op = live.client("op1")
    made = op.post("/api/v1/cases", json={"category": "facilities", "title": "lift", "grid": "110105001001002"})
    assert made.status_code == 201
    filed = httpx.post(f"{live.base_url}/open311/v2/requests.json", data=RESIDENT)
    assert filed.status_code == 201, filed.text
    resident_case = int(filed.json()[0]["service_request_id"])
    assert act(op, resident_case, "register", note="lock broken at bin 7").status_code == 200
    public = act(op, resident_case, "dispatch", note="devices: none", public_note="A team comes on Tuesday.")
    assert public.status_code == 200
    return device_case, int(made.json()["id"]), resident_case


def test_anonymous_readers_see_public_fields_of_public_cases(live: CasesEnv) -> None:
    device_case, operator_case, resident_case = _seed(live)
    base = f"{live.base_url}/open311/v2"
    listed = httpx.get(f"{base}/requests.json")
    assert listed.status_code == 200
    [req] = listed.json()  # neither the device-raised nor the operator's case
    assert req["service_request_id"] == str(resident_case)
    assert set(req) == set(PUBLIC_FIELDS)
    assert req["status_notes"] == "Dispatched to the responsible grid worker and force. A team comes on Tuesday."
    assert (req["lat"], req["long"]) == (39.912, 116.446)  # ~100 m
    text = listed.text
    assert not [s for s in SECRETS if s in text], text
    for hidden in (device_case, operator_case):
        assert httpx.get(f"{base}/requests/{hidden}.json").status_code == 404
        assert httpx.get(f"{base}/requests.json", params={"service_request_id": hidden}).json() == []
    [one] = httpx.get(f"{base}/requests/{resident_case}.json").json()
    assert one == req

    xml = httpx.get(f"{base}/requests.xml")
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(xml.content)
    assert root.tag == "service_requests"
    [item] = root.findall("request")
    assert item.findtext("service_request_id") == str(resident_case) and item.findtext("lat") == "39.912"
    assert {child.tag for child in item} == set(PUBLIC_FIELDS)
    assert not [s for s in SECRETS if s in xml.text]
    detail = ElementTree.fromstring(httpx.get(f"{base}/requests/{resident_case}.xml").content)
    assert detail.find("request/status").text == "open"  # type: ignore[union-attr]
    services = ElementTree.fromstring(httpx.get(f"{base}/services.xml").content)
    assert services.tag == "services" and "environment_sanitation" in {s.findtext("service_code") for s in services}
    missing = httpx.get(f"{base}/requests/{device_case}.xml")
    assert missing.status_code == 404 and ElementTree.fromstring(missing.content).tag == "errors"
    assert httpx.get(f"{base}/requests.csv").status_code == 422  # only .json and .xml


def test_public_categories_show_device_cases_at_their_grid_centroid(live: CasesEnv) -> None:
    device_case, _operator_case, _resident_case = _seed(live)
    live.ctx.services.open311 = PublicPolicy(frozenset({"fire_safety"}))
    listed = httpx.get(f"{live.base_url}/open311/v2/requests.json").json()
    [req] = [r for r in listed if r["service_request_id"] == str(device_case)]
    assert (req["lat"], req["long"]) == (39.91, 116.435)  # centre of grid 1; the case has no point
    assert not [s for s in SECRETS if s in json.dumps(listed)]
    assert len(listed) == 2  # facilities is still not public


def test_filer_reads_their_own_request_in_full(live: CasesEnv) -> None:
    tokens: TokenStore = need(live.ctx.services.tokens, "tokens")
    token = tokens.issue_token("r1", "test")
    base = f"{live.base_url}/open311/v2"
    filed = httpx.post(f"{base}/requests.json", data=RESIDENT | {"api_key": token})
    assert filed.status_code == 201
    rid = filed.json()[0]["service_request_id"]
    [own] = httpx.get(f"{base}/requests/{rid}.json", params={"api_key": token}).json()
    assert set(own) == set(PUBLIC_FIELDS) | set(FULL_FIELDS)
    assert own["description"] == RESIDENT["description"] and own["address"] == RESIDENT["address_string"]
    assert (own["lat"], own["long"]) == (39.91234, 116.44567)
    bearer = httpx.get(f"{base}/requests.json", headers={"Authorization": f"Bearer {token}"}).json()
    assert [r["description"] for r in bearer if r["service_request_id"] == rid] == [RESIDENT["description"]]
    [anonymous] = httpx.get(f"{base}/requests/{rid}.json").json()
    assert "description" not in anonymous and anonymous["lat"] == 39.912
    assert httpx.get(f"{base}/requests.json", params={"api_key": "gst_" + "x" * 40}).status_code == 403


def test_anonymous_filing_is_rate_limited_per_address(live: CasesEnv) -> None:
    live.ctx.services.open311 = PublicPolicy(posts_per_hour=1, post_burst=2)
    url = f"{live.base_url}/open311/v2/requests.json"
    assert [httpx.post(url, data=RESIDENT).status_code for _ in range(2)] == [201, 201]
    refused = httpx.post(url, data=RESIDENT)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 3600
    assert refused.json()[0]["code"] == 429
    xml = httpx.post(url.replace(".json", ".xml"), data=RESIDENT)
    assert xml.status_code == 429 and ElementTree.fromstring(xml.content).tag == "errors"
    token = need(live.ctx.services.tokens, "tokens").issue_token("r1", "test")
    assert httpx.post(url, data=RESIDENT | {"api_key": token}).status_code == 201  # signed in: not limited


def test_xml_post_answers_the_spec_document(live: CasesEnv) -> None:
    filed = httpx.post(f"{live.base_url}/open311/v2/requests.xml", data=RESIDENT)
    assert filed.status_code == 201
    root = ElementTree.fromstring(filed.content)
    assert root.tag == "service_requests" and root.findtext("request/service_request_id")


def test_administrator_acts_on_cases_as_admin(live: CasesEnv) -> None:
    case_id = live.svc.on_incident_group(smoke_group())
    assert case_id is not None
    token = need(live.ctx.services.tokens, "tokens").issue_token(BOOTSTRAP_ADMIN_ID, "test")
    admin = httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=15)
    cancelled = act(admin, case_id, "cancel", reason="duplicate")
    assert cancelled.status_code == 200, cancelled.text
    [*_, last] = admin.get(f"/api/v1/cases/{case_id}/audit").json()
    assert (last["actor"], last["action"], last["data"]["actor_roles"]) == (BOOTSTRAP_ADMIN_ID, "cancel", ["admin"])
    assert admin.get(f"/api/v1/cases/{case_id}/audit/verify").json()["ok"] is True


def test_evaluation_is_scoped_like_the_case_list(live: CasesEnv) -> None:
    op = live.client("op1")
    inside = live.svc.on_incident_group(smoke_group())
    assert inside is not None
    street = op.post("/api/v1/cases", json={"category": "facilities", "title": "street lamp", "grid": "110105001"})
    assert street.status_code == 201

    def counted(actor: str) -> Any:
        report = live.client(actor).get("/api/v1/evaluation", params={"by": "all"}).json()
        return report["scoped"], report["groups"][0]["cases"] if report["groups"] else 0

    assert counted("op1") == (False, 2)
    assert counted("sup1") == (True, 1)  # community supervisor: not the street-level case
    assert counted("sup2") == (True, 2)  # street supervisor: both
