"""Emergency plans through the real API on SQLite and PostgreSQL: a fire case carries its plan, close waits for it."""

from __future__ import annotations

from typing import Any

from tests.hub.cases.conftest import MONDAY_10AM, CasesEnv
from tests.hub.cases.test_api_flow import act, smoke_group

NOW_MS = int(MONDAY_10AM * 1000)


def gas_group() -> dict[str, Any]:
    return smoke_group(group_id=42, incident_ids=[601]) | {"title": "gas leak in kitchen", "event_types": ["gas_leak"]}


def test_fire_case_carries_the_plan_and_close_waits_for_recovery_and_review(live: CasesEnv) -> None:
    case_id = live.svc.on_incident_group(smoke_group() | {"event_types": ["smoke"]})
    assert case_id is not None
    op, f1, w1, sup = live.client("op1"), live.client("f1"), live.client("w1"), live.client("sup1")
    case = op.get(f"/api/v1/cases/{case_id}").json()
    assert case["plan"] == "fire"
    steps = case["plan_steps"]
    assert [s["name"] for s in steps] == ["notify", "evacuate", "secure", "recover", "review"]
    assert steps[0] == {"name": "notify", "phase": "warn", "force": "fire", "due_ms": NOW_MS + 300_000, "done_ms": None}
    assert steps[4]["role"] == "supervisor" and steps[4]["due_ms"] == NOW_MS + 3 * 86_400_000

    for action in ("accept", "handle", "feedback"):
        assert act(f1, case_id, action).status_code == 200
    assert act(sup, case_id, "verify", result="pass").status_code == 200
    refused = act(sup, case_id, "close")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert detail["reason"] == "plan_steps_open" and detail["missing"] == ["recover", "review"]
    assert "recover, review" in detail["message"]

    live.clock.advance(60)
    assert f1.post(f"/api/v1/cases/{case_id}/plan/notify").status_code == 200  # the fire force's own step
    wrong = f1.post(f"/api/v1/cases/{case_id}/plan/recover")
    assert wrong.status_code == 403 and wrong.json()["detail"]["reason"] == "not_step_owner"
    live.clock.advance(60)
    done = w1.post(f"/api/v1/cases/{case_id}/plan/recover", json={"note": "power back on"})
    assert done.status_code == 200
    assert done.json()["event"]["data"] == {"plan": "fire", "step": "recover", "phase": "recover"}
    again = w1.post(f"/api/v1/cases/{case_id}/plan/recover")
    assert again.status_code == 409 and again.json()["detail"]["reason"] == "plan_step_done"
    unknown = sup.post(f"/api/v1/cases/{case_id}/plan/dance")
    assert unknown.status_code == 422 and unknown.json()["detail"]["reason"] == "unknown_plan_step"
    refused = act(sup, case_id, "close")
    assert refused.status_code == 409 and refused.json()["detail"]["missing"] == ["review"]

    assert sup.post(f"/api/v1/cases/{case_id}/plan/review").status_code == 200
    closed = act(sup, case_id, "close").json()
    assert closed["state"] == "closed"
    done_steps = {s["name"]: (s.get("done_by"), s["done_ms"]) for s in closed["plan_steps"]}
    assert done_steps["notify"] == ("f1", NOW_MS + 60_000)
    assert done_steps["recover"] == ("w1", NOW_MS + 120_000)
    assert done_steps["evacuate"] == (None, None)  # not required to close; left undone, and that shows

    trail = op.get(f"/api/v1/cases/{case_id}/audit").json()
    marked = [(e["actor"], e["data"]["step"], e["ts_ms"]) for e in trail if e["action"] == "plan_step"]
    assert marked == [
        ("f1", "notify", NOW_MS + 60_000),
        ("w1", "recover", NOW_MS + 120_000),
        ("sup1", "review", NOW_MS + 120_000),
    ]
    assert trail[0]["data"]["plan"] == "fire"
    assert op.get(f"/api/v1/cases/{case_id}/audit/verify").json()["ok"] is True


def test_gas_leak_gets_its_own_plan_and_routine_cases_none(live: CasesEnv) -> None:
    gas = live.svc.on_incident_group(gas_group())
    assert gas is not None
    op = live.client("op1")
    case = op.get(f"/api/v1/cases/{gas}").json()
    assert case["plan"] == "gas-leak" and "shut_off" in [s["name"] for s in case["plan_steps"]]
    routine = op.post(
        "/api/v1/cases", json={"category": "facilities", "title": "lift stuck", "grid": "110105001001001"}
    )
    assert routine.json()["plan"] is None and routine.json()["plan_steps"] == []
    no_plan = op.post(f"/api/v1/cases/{routine.json()['id']}/plan/recover")
    assert no_plan.status_code == 404 and no_plan.json()["detail"]["reason"] == "no_plan"
    # a resident cannot tick a plan step, not even on a case they can see
    assert live.client("r1").post(f"/api/v1/cases/{gas}/plan/notify").status_code == 404
