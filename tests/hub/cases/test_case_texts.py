"""The same case read in Chinese and in English: title, description, escalation notes, Open311 sentences.

Real hub app over HTTP on SQLite and PostgreSQL (the ``live`` fixture); old rows written in
English before messages existed still read, as written.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update

from hub.cases.models import CaseEventRow, CaseRow
from hub.rules.loader import default_rules
from hub.rules.titles import on_device
from tests.hub.cases.conftest import CasesEnv
from tests.hub.cases.test_api_flow import act, smoke_group
from tests.hub.conftest import FirstStreamEvent

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"Accept-Language": "en-US,en;q=0.9"}
MINUTE = 60.0


def device_group(group_id: int = 41) -> dict[str, Any]:
    """An incident group as the incident service hands it over: its title with its message."""
    smoke = next(r for r in default_rules() if r.id == "smoke")
    title = {"title": on_device(smoke, "smoke-3")}
    return {**smoke_group(group_id), "title": "Smoke detected on smoke-3", "texts": title}


def test_a_device_case_reads_in_the_readers_language(live: CasesEnv) -> None:
    case_id = live.svc.on_incident_group(device_group())
    assert case_id is not None
    op = live.client("op1")
    zh = op.get(f"/api/v1/cases/{case_id}", headers=ZH).json()
    en = op.get(f"/api/v1/cases/{case_id}", headers=EN).json()
    assert zh["title"] == "检测到烟雾（设备 smoke-3）"
    assert zh["description"] == "站点 yonganli，设备 ['smoke-3']"
    assert en["title"] == "Smoke detected on smoke-3"
    assert en["description"] == "site yonganli, devices ['smoke-3']"
    assert op.get(f"/api/v1/cases/{case_id}").json()["title"] == en["title"]  # nothing asked: English
    assert op.get(f"/api/v1/cases/{case_id}?lang=zh", headers=EN).json()["title"] == zh["title"]  # ?lang= wins
    assert op.get("/api/v1/cases", headers=ZH).json()[0]["title"] == zh["title"]
    # a transition's answer too; the note the person wrote stays as written
    accepted = act(live.client("f1"), case_id, "accept", note="on my way")
    assert accepted.status_code == 200
    accepted = op.get(f"/api/v1/cases/{case_id}/audit?lang=zh").json()[-1]
    assert accepted["note"] == "on my way"
    stored = live.svc.get(case_id)
    assert stored["title"] == "Smoke detected on smoke-3"  # the row keeps the English (logs, webhooks)
    assert stored["texts"]["title"]["key"] == "incident.on_device"


def test_escalation_notes_read_in_the_readers_language(live: CasesEnv) -> None:
    case_id = live.svc.on_incident_group(device_group())  # critical fire: accept within 10 minutes
    assert case_id is not None
    live.clock.advance(10 * MINUTE + 1)
    [escalation] = live.svc.sweep()
    assert escalation["level_name"] == "street"
    sup = live.client("sup1")
    [zh] = [e for e in sup.get(f"/api/v1/cases/{case_id}/audit", headers=ZH).json() if e["action"] == "escalate"]
    [en] = [e for e in sup.get(f"/api/v1/cases/{case_id}/audit", headers=EN).json() if e["action"] == "escalate"]
    assert zh["note"] == "受理环节超时：已升级至街道（110105001）"
    assert en["note"] == "accept overdue: escalated to the street (110105001)"
    assert zh["hash"] == en["hash"]  # one stored entry, two readings; the chain is untouched
    assert sup.get(f"/api/v1/cases/{case_id}/audit/verify").json()["ok"] is True


def test_old_rows_in_plain_english_still_read(live: CasesEnv) -> None:
    case_id = live.svc.on_incident_group(device_group())
    assert case_id is not None
    live.clock.advance(10 * MINUTE + 1)
    assert len(live.svc.sweep()) == 1
    with live.svc.sessions() as s, s.begin():  # as written before messages: English only
        s.execute(update(CaseRow).where(CaseRow.id == case_id).values(texts=None))
        for event in s.query(CaseEventRow).where(CaseEventRow.case_id == case_id, CaseEventRow.action == "escalate"):
            event.data = {k: v for k, v in event.data.items() if k != "texts"}
    op = live.client("op1")
    for headers in (ZH, EN):
        case = op.get(f"/api/v1/cases/{case_id}", headers=headers).json()
        assert case["title"] == "Smoke detected on smoke-3"
        assert case["description"] == "site yonganli, devices ['smoke-3']"
    # an old escalation is rebuilt from what its entry recorded; in English it reads as written
    trail = {lang: op.get(f"/api/v1/cases/{case_id}/audit?lang={lang}").json() for lang in ("zh", "en")}
    assert [e["note"] for e in trail["zh"] if e["action"] == "escalate"] == ["受理环节超时：已升级至街道（110105001）"]
    assert [e["note"] for e in trail["en"] if e["action"] == "escalate"] == [
        "accept overdue: escalated to the street (110105001)"
    ]
    # an operator's case: the title a person wrote reads as written in both languages
    made = op.post("/api/v1/cases", json={"category": "facilities", "title": "lift stuck", "grid": "110105001001002"})
    assert made.status_code == 201
    assert op.get(f"/api/v1/cases/{made.json()['id']}", headers=ZH).json()["title"] == "lift stuck"


def test_open311_answers_in_the_residents_language(live: CasesEnv) -> None:
    base = f"{live.base_url}/open311/v2"
    filed = httpx.post(
        f"{base}/requests.json",
        data={"service_code": "environment_sanitation", "lat": "39.9121", "long": "116.4462", "description": "bins"},
    )
    assert filed.status_code == 201, filed.text
    request_id = filed.json()[0]["service_request_id"]
    op = live.client("op1")
    assert act(op, int(request_id), "register").status_code == 200
    assert act(op, int(request_id), "dispatch", public_note="A team comes on Tuesday.").status_code == 200

    zh = httpx.get(f"{base}/requests/{request_id}.json", headers=ZH)
    assert zh.headers["content-language"] == "zh-CN"
    [req] = zh.json()
    assert req["status_notes"] == "已派遣给责任网格员和处置力量。 A team comes on Tuesday."
    assert req["service_name"] == "环境卫生"
    [req] = httpx.get(f"{base}/requests/{request_id}.json", headers=EN).json()
    assert req["status_notes"] == "Dispatched to the responsible grid worker and force. A team comes on Tuesday."
    assert req["service_name"] == "Environment and sanitation"
    listed = httpx.get(f"{base}/requests.xml?lang=zh")
    assert listed.headers["content-language"] == "zh-CN"
    assert "已派遣给责任网格员和处置力量。" in listed.text
    services = httpx.get(f"{base}/services.json", headers=ZH).json()
    fire = next(s for s in services if s["service_code"] == "fire_safety")
    assert (fire["service_name"], fire["service_name_zh"]) == ("消防安全", "消防安全")
    assert fire["description"].startswith("由")


def test_the_live_stream_speaks_the_language_of_its_lang_parameter(live: CasesEnv) -> None:
    url = f"{live.base_url}/api/v1/stream?kinds=case&lang=zh"
    listener = FirstStreamEvent(url, {"X-Actor": "op1"}).start()
    assert live.svc.on_incident_group(device_group()) is not None
    first = listener.wait()
    assert first is not None
    assert first["case"]["title"] == "检测到烟雾（设备 smoke-3）"
