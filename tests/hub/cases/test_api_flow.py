"""The case API end to end on SQLite and PostgreSQL: smoke → case → closed loop, audit tampering, races."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.hub.cases.conftest import CasesEnv, finish_plan

GRID_1 = "110105001001001"


def smoke_group(group_id: int = 41, incident_ids: list[int] | None = None) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "category": "fire_safety",
        "severity": "critical",
        "grid": GRID_1,
        "site": "yonganli",
        "state": "open",
        "incident_ids": incident_ids or [501],
        "title": "smoke detected in building 3",
        "first_ts": 1_795_399_000_000,
        "device_ids": ["smoke-3"],
    }


def act(client: httpx.Client, case_id: int, action: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/v1/cases/{case_id}/{action}", json=body)


def test_smoke_detector_to_evaluated_case(live: CasesEnv) -> None:
    sub = live.ctx.bus.subscribe()
    started = time.monotonic()
    case_id = live.svc.on_incident_group(smoke_group())
    assert case_id is not None
    op = live.client("op1")
    case = op.get(f"/api/v1/cases/{case_id}").json()
    assert time.monotonic() - started < 1.0
    assert case["state"] == "dispatched"
    assert (case["worker"], case["force"], case["assignees"]) == ("w1", "fire", ["f1", "w1"])
    assert case["stage"] == "accept" and case["sla"]["level"] == "green"
    assert any(e.kind == "case" and e.data["event"] == "dispatch" for e in sub.get(1.0))

    # a further incident of the same open group attaches to the same case
    assert live.svc.on_incident_group(smoke_group(incident_ids=[501, 502])) == case_id
    assert op.get("/api/v1/cases").json()[0]["incident_ids"] == [501, 502]
    assert len(op.get("/api/v1/cases").json()) == 1

    f1, sup, resident = live.client("f1"), live.client("sup1"), live.client("r1")
    assert act(f1, case_id, "accept").status_code == 200
    assert act(f1, case_id, "handle", note="extinguisher used").json()["state"] == "handling"
    evidence = "a" * 64
    assert act(f1, case_id, "feedback", note="no fire, burnt toast", evidence=[evidence]).json()["state"] == "feedback"
    refused = act(f1, case_id, "verify", result="pass")
    assert refused.status_code == 403  # force members cannot verify at all
    refused = act(live.client("w1"), case_id, "verify", result="pass")
    assert refused.status_code == 200  # the grid worker is not the handler: allowed
    finish_plan(sup, case_id)  # the fire plan's recovery and review
    assert act(sup, case_id, "close").json()["state"] == "closed"
    # a resident evaluates only their own reports (a device-raised case is not theirs: 404, as if absent)
    assert act(resident, case_id, "evaluate", satisfaction=5).status_code == 404
    done = act(sup, case_id, "evaluate", satisfaction=5).json()
    assert done["state"] == "evaluated" and done["satisfaction"] == 5

    audit = op.get(f"/api/v1/cases/{case_id}/audit").json()
    actions = [e["action"] for e in audit]
    assert actions == [
        "report",
        "register",
        "dispatch",
        "attach",
        "accept",
        "handle",
        "feedback",
        "verify",
        "plan_step",
        "plan_step",
        "close",
        "evaluate",
    ]
    assert audit[6]["evidence"] == [evidence] and audit[2]["actor"] == "system"
    assert op.get(f"/api/v1/cases/{case_id}/audit/verify").json()["ok"] is True

    written: list[Any] = []

    class Recorder:
        def submit(self, points: Sequence[Any]) -> None:
            written.extend(points)

    live.ctx.services.writer = Recorder()
    ev = op.get("/api/v1/evaluation", params={"by": "force", "period": "2026-11"}).json()
    [point] = written
    assert (point.measurement, point.tags["by"], point.tags["key"]) == ("case_eval", "force", "fire")
    assert point.fields["on_time_rate"] == 1.0 and point.fields["satisfaction"] == 5.0
    fire = next(g for g in ev["groups"] if g["key"] == "fire")
    assert (fire["cases"], fire["closed"], fire["closure_rate"], fire["on_time_rate"]) == (1, 1, 1.0, 1.0)
    assert fire["satisfaction"] == 5.0 and fire["rework_rate"] == 0.0
    assert op.get("/api/v1/evaluation", params={"by": "grid", "period": "2026-10"}).json()["groups"] == []


def test_handler_cannot_verify_and_rework_is_counted(live: CasesEnv) -> None:
    case_id = live.svc.on_incident_group(smoke_group())
    assert case_id is not None
    w1, sup = live.client("w1"), live.client("sup1")
    for action in ("accept", "handle", "feedback"):
        assert act(w1, case_id, action).status_code == 200
    refused = act(w1, case_id, "verify", result="pass")
    assert refused.status_code == 409
    assert refused.json()["detail"]["reason"] == "verifier_is_handler"
    assert act(sup, case_id, "verify", result="fail", note="still smoky").json()["state"] == "handling"
    assert act(w1, case_id, "feedback").status_code == 200
    case = act(sup, case_id, "verify", result="pass").json()
    assert case["rework_count"] == 1
    finish_plan(sup, case_id)
    assert act(sup, case_id, "close").status_code == 200
    groups = live.client("sup1").get("/api/v1/evaluation", params={"by": "worker"}).json()["groups"]
    assert groups == [g for g in groups if g["key"] == "w1"] and groups[0]["rework_rate"] == 1.0


def test_altered_audit_row_is_caught(live: CasesEnv) -> None:
    case_id = live.svc.on_incident_group(smoke_group())
    assert case_id is not None
    op = live.client("op1")
    act(live.client("f1"), case_id, "accept")
    assert op.get(f"/api/v1/cases/{case_id}/audit/verify").json()["ok"] is True
    with live.ctx.engine.begin() as conn:
        conn.execute(text("UPDATE case_events SET actor = 'op1' WHERE case_id = :c AND seq = 3"), {"c": case_id})
    report = op.get(f"/api/v1/cases/{case_id}/audit/verify").json()
    assert (report["ok"], report["bad_seq"]) == (False, 3)
    assert "hash" in report["reason"]
    # restoring the row and then deleting the newest row is caught as well
    with live.ctx.engine.begin() as conn:
        conn.execute(text("UPDATE case_events SET actor = 'system' WHERE case_id = :c AND seq = 3"), {"c": case_id})
    assert op.get(f"/api/v1/cases/{case_id}/audit/verify").json()["ok"] is True
    with live.ctx.engine.begin() as conn:
        conn.execute(text("DELETE FROM case_events WHERE case_id = :c AND seq = 4"), {"c": case_id})
    report = op.get(f"/api/v1/cases/{case_id}/audit/verify").json()
    assert report["ok"] is False and "recorded" in report["reason"]


def test_twenty_concurrent_closes_make_one_transition(live: CasesEnv) -> None:
    case_id = live.svc.on_incident_group(smoke_group())
    assert case_id is not None
    f1, sup = live.client("f1"), live.client("sup1")
    for action in ("accept", "handle", "feedback"):
        assert act(f1, case_id, action).status_code == 200
    assert act(sup, case_id, "verify", result="pass").status_code == 200
    finish_plan(sup, case_id)
    barrier = threading.Barrier(20)
    codes: list[int] = []
    lock = threading.Lock()

    def close(i: int) -> None:
        with live.client("sup1") as client:
            barrier.wait()
            response = client.post(f"/api/v1/cases/{case_id}/close", json={"note": f"closer {i}"})
        with lock:
            codes.append(response.status_code)

    threads = [threading.Thread(target=close, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [200] + [409] * 19
    audit = live.client("op1").get(f"/api/v1/cases/{case_id}/audit").json()
    assert [e["action"] for e in audit].count("close") == 1
    assert live.client("op1").get(f"/api/v1/cases/{case_id}/audit/verify").json()["ok"] is True


def test_idempotency_versions_roles_and_reasons(live: CasesEnv) -> None:
    op = live.client("op1")
    created = op.post(
        "/api/v1/cases", json={"category": "environment_sanitation", "title": "overflowing bin", "grid": GRID_1}
    )
    assert created.status_code == 201
    case_id, etag = created.json()["id"], created.headers["ETag"]
    assert created.json()["state"] == "registered"

    key = {"Idempotency-Key": "dispatch-1"}
    first = op.post(f"/api/v1/cases/{case_id}/dispatch", json={"note": "go"}, headers=key | {"If-Match": etag})
    assert first.status_code == 200 and first.json()["assignees"] == ["u1", "w1"]
    again = op.post(f"/api/v1/cases/{case_id}/dispatch", json={"note": "go"}, headers=key)
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = op.post(f"/api/v1/cases/{case_id}/dispatch", json={"note": "changed"}, headers=key)
    assert other.status_code == 422 and other.json()["detail"]["reason"] == "idempotency_key_reused"

    stale = live.client("w1").post(f"/api/v1/cases/{case_id}/accept", headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.headers["ETag"] == first.headers["ETag"]
    fresh = live.client("w1").post(f"/api/v1/cases/{case_id}/accept", headers={"If-Match": first.headers["ETag"]})
    assert fresh.status_code == 200

    assert live.client("r1").post(f"/api/v1/cases/{case_id}/close").status_code == 404  # not their report
    assert live.client().get(f"/api/v1/cases/{case_id}").status_code == 401
    assert live.client("nobody").get(f"/api/v1/cases/{case_id}").status_code == 401
    illegal = op.post(f"/api/v1/cases/{case_id}/register")
    assert illegal.status_code == 409
    assert illegal.json()["detail"] == {
        "reason": "illegal_transition",
        "state": "accepted",
        "action": "register",
        "message": "cannot register a accepted case",
    }
    assert op.post(f"/api/v1/cases/{case_id}/cancel", json={}).json()["detail"]["reason"] == "reason_required"
    assert op.post("/api/v1/cases/999/close").status_code == 404
    assert live.client("w1").post(f"/api/v1/cases/{case_id}/return", json={"reason": "not mine"}).status_code == 200
    assert op.get(f"/api/v1/cases/{case_id}").json()["state"] == "returned"


def test_directory_is_managed_through_the_api(live: CasesEnv) -> None:
    admin, op = live.client("admin1"), live.client("op1")
    assert len(op.get("/api/v1/grids").json()) == 6
    new_grid = {"name": "Grid 4", "households": 100, "population": 300, "polygon": []}
    assert admin.put("/api/v1/grids/110105001001004", json=new_grid).status_code == 200
    assert op.put("/api/v1/grids/110105001001005", json=new_grid).status_code == 403
    orphan = admin.put("/api/v1/grids/110105002001001", json=new_grid)
    assert orphan.status_code == 422 and "parent" in orphan.json()["detail"]["message"]
    worker = {"name": "Worker Ma", "roles": ["grid_worker"], "responsibilities": [{"grids": ["110105001001004"]}]}
    assert admin.put("/api/v1/people/w4", json=worker).status_code == 200
    case = op.post(
        "/api/v1/cases", json={"category": "environment_sanitation", "title": "x", "grid": "110105001001004"}
    ).json()
    assert op.post(f"/api/v1/cases/{case['id']}/dispatch").json()["assignees"] == ["u1", "w4"]
    assert admin.delete("/api/v1/forces/fire").status_code == 422  # still referenced
    bad = admin.post("/api/v1/grids/load", content="city: {code: '1', name: x}\npeople: [{id: a}]\n")
    assert bad.status_code == 422 and bad.json()["detail"]["path"] == "people.0.name"


@pytest.mark.parametrize("replicas", [2])
def test_one_case_per_group_under_races(env: CasesEnv, replicas: int) -> None:
    barrier = threading.Barrier(replicas * 2)
    ids: list[int | None] = []

    def deliver() -> None:
        barrier.wait()
        ids.append(env.svc.on_incident_group(smoke_group(group_id=77)))

    threads = [threading.Thread(target=deliver) for _ in range(replicas * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(set(ids)) == 1 and ids[0] is not None
    assert len(env.svc.list_cases()) == 1


def test_group_without_known_grid_waits_for_an_operator(env: CasesEnv) -> None:
    group = smoke_group(group_id=90) | {"grid": "999999999999999"}
    case_id = env.svc.on_incident_group(group)
    assert case_id is not None
    case = env.svc.get(case_id)
    assert (case["state"], case["grid"], case["assignees"]) == ("registered", None, [])
    assert env.svc.on_incident_group(smoke_group(group_id=91) | {"state": "closed"}) is None
