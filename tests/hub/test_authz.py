"""Roles and object-level access: pure policies per role, the admin bootstrap, and a real hub probed per role."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, text

from edge import wire
from edge.wire import Channel, DeviceKind, DeviceState, Status
from hub.context import need
from hub.db import make_engine, session_factory, sqlite_url
from hub.schema import init_schema
from hub.security import authz
from hub.security.auth import ADMIN_TOKEN_ENV, BOOTSTRAP_ADMIN_ID, TokenStore, bootstrap_admin
from hub.security.authz import DEMO_PRINCIPAL, Principal, principal_of
from hub.service import Hub, HubStartError
from simulators.servers import Mosquitto, wait_until
from tests.hub.conftest import ADMIN_TOKEN, HubFactory, api
from tests.hub.snapshots.test_store import event, jpeg

GRID_1, GRID_2 = "110105001001001", "110105001001002"
COMMUNITY = "110105001001"
ROUTES = {"fire_safety": "fire", "environment_sanitation": "urban"}


def person(pid: str, *roles: str, grids: tuple[str, ...] = (), force: str | None = None) -> Principal:
    return principal_of(pid, roles, [(grids, ("*",))] if grids else [], force, ROUTES)


ADMIN = person("admin1", "admin")
OPERATOR = person("op1", "operator")
SUPERVISOR = person("sup1", "supervisor", grids=(COMMUNITY,))
WORKER_1 = person("w1", "grid_worker", grids=(GRID_1,))
WORKER_2 = person("w2", "grid_worker", grids=(GRID_2,))
FIRE = person("f1", "force_member", force="fire")
URBAN = person("u1", "force_member", force="urban")
RESIDENT = person("r1", "resident")
INTEGRATION = person("int1", "integration")
EVERYONE = (ADMIN, OPERATOR, SUPERVISOR, WORKER_1, WORKER_2, FIRE, URBAN, RESIDENT, INTEGRATION, DEMO_PRINCIPAL)


def case(grid: str, force: str | None, reporter: str | None = None, assignees: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"grid": grid, "force": force, "reporter": reporter, "assignees": list(assignees), "worker": None}


def who(allowed: Any) -> set[str]:
    return {p.id for p in EVERYONE if allowed(p)}


# ------------------------------------------------------------------ pure policies


def test_principal_from_a_person() -> None:
    p = principal_of("f1", ["force_member"], [(["110105001"], ["fire_safety"])], "fire", ROUTES)
    assert (p.grids, p.force, p.force_categories, p.categories) == (
        ("110105001",),
        "fire",
        frozenset({"fire_safety"}),
        frozenset({"fire_safety"}),
    )
    assert p.covers(GRID_1) and not p.covers("110106") and not p.covers(None)
    assert not principal_of("x", ["demo_viewer"]).anonymous  # nobody can hold the demo role
    assert DEMO_PRINCIPAL.anonymous and not DEMO_PRINCIPAL.public()["evidence"]


def test_cases_by_role() -> None:
    grid_1 = case(GRID_1, "urban")
    grid_2_fire = case(GRID_2, "fire")
    own = case(GRID_2, None, reporter="r1")
    assert who(lambda p: authz.may_read_case(p, grid_1)) == {"admin1", "op1", "sup1", "w1", "u1"}
    assert who(lambda p: authz.may_read_case(p, grid_2_fire)) == {"admin1", "op1", "sup1", "w2", "f1"}
    assert who(lambda p: authz.may_read_case(p, own)) == {"admin1", "op1", "sup1", "w2", "r1"}
    # explicitly dispatched to someone outside their areas: they see it
    assert authz.may_read_case(WORKER_2, case(GRID_1, None, assignees=("w2",)))
    assert who(authz.may_list_cases) == {"admin1", "op1", "sup1", "w1", "w2", "f1", "u1", "r1"}
    assert who(authz.may_create_case) == {"admin1", "op1", "sup1"}
    assert who(lambda p: authz.may_act_on_case(p, own)) == {"admin1", "op1", "sup1", "w2", "r1"}
    assert who(lambda p: authz.may_read_case_audit(p, own)) == {"admin1", "op1", "sup1", "w2"}  # not the resident
    assert who(lambda p: authz.may_verify_audit(p, grid_1)) == {"admin1", "op1", "sup1"}
    assert who(authz.may_evaluate) == {"admin1", "op1", "sup1"}


def test_devices_series_incidents_by_role() -> None:
    device_1 = {"grid": GRID_1}
    assert who(lambda p: authz.may_read_device(p, device_1)) == {"admin1", "op1", "sup1", "w1", "int1", "demo-viewer"}
    assert who(lambda p: authz.may_read_device(p, {"grid": None})) == {"admin1", "op1", "int1", "demo-viewer"}
    # a supervisor's reach is their subtree: another community's device and alarm are not theirs
    elsewhere = "110106001001001"
    assert who(lambda p: authz.may_read_device(p, {"grid": elsewhere})) == {"admin1", "op1", "int1", "demo-viewer"}
    assert "sup1" not in who(lambda p: authz.may_read_incident(p, {"grid": elsewhere, "category": "fire_safety"}))
    assert "r1" not in who(authz.may_list_devices)
    fire_incident = {"grid": GRID_2, "category": "fire_safety"}
    assert who(lambda p: authz.may_read_incident(p, fire_incident)) == {
        "admin1", "op1", "sup1", "w2", "f1", "int1", "demo-viewer",
    }  # fmt: skip
    assert who(lambda p: authz.may_act_on_incident(p, fire_incident)) == {"admin1", "op1", "sup1", "w2"}
    assert who(authz.may_command_devices) == {"admin1", "op1"}


def test_operations_directory_evidence_by_role() -> None:
    assert who(authz.may_read_operations) == {"admin1", "op1", "demo-viewer"}
    assert who(authz.may_change_operations) == {"admin1", "op1"}
    assert who(authz.may_read_rules) == {"admin1", "op1", "sup1", "int1", "demo-viewer"}
    assert who(authz.may_read_people) == {"admin1", "op1", "sup1"}
    assert "demo-viewer" not in who(authz.may_read_areas) and "r1" in who(authz.may_read_areas)
    assert who(authz.may_manage_directory) == {"admin1"}
    assert who(lambda p: authz.may_see_evidence(p, {"grid": GRID_1})) == {"admin1", "op1", "sup1"}
    assert who(lambda p: authz.may_see_evidence(p, {"grid": "110106001001001"})) == {"admin1", "op1"}
    assert who(lambda p: authz.may_see_evidence(p, None)) == {"admin1", "op1"}


def test_levels_and_areas_by_role() -> None:
    street_sup = person("sup-street", "supervisor", grids=("110105001",))
    assert who(authz.may_read_levels) == {"admin1", "op1", "sup1"}
    assert authz.may_read_area(street_sup, COMMUNITY) and authz.may_read_area(street_sup, "110105001")
    assert not authz.may_read_area(street_sup, "110105") and not authz.may_read_area(street_sup, "110105002")
    assert authz.may_read_area(OPERATOR, "110105")  # hub-wide
    # the map shows the subtree and the areas above it (names, breadcrumb), nothing beside it
    codes = ("110105", "110105001", COMMUNITY, "110105002", "110105002001")
    assert [c for c in codes if authz.area_in_view(street_sup, c)] == ["110105", "110105001", COMMUNITY]
    assert authz.area_in_view(FIRE, "110105002")  # no areas: a force works by category, the map is whole


def test_stream_events_follow_the_objects() -> None:
    assert authz.may_see_event(WORKER_1, "device", {"grid": GRID_1})
    assert not authz.may_see_event(WORKER_1, "device", {"grid": GRID_2})
    assert not authz.may_see_event(SUPERVISOR, "device", {"grid": "110106001001001"})
    assert not authz.may_see_event(SUPERVISOR, "incident", {"grid": "110106001001001", "category": "fire_safety"})
    assert authz.may_see_event(WORKER_1, "case", {"event": "dispatch", "case": case(GRID_1, None)})
    assert not authz.may_see_event(RESIDENT, "case", {"event": "dispatch", "case": case(GRID_1, None)})
    assert not authz.may_see_event(WORKER_1, "data_loss", {}) and authz.may_see_event(OPERATOR, "data_loss", {})
    assert not authz.may_see_event(INTEGRATION, "something_new", {})  # unknown kinds: operators only


@given(
    visible=st.lists(st.booleans(), max_size=60),
    limit=st.integers(1, 20),
    offset=st.integers(0, 40),
    batch=st.integers(1, 7),
)
def test_visible_page_pages_over_visible_items_only(visible: list[bool], limit: int, offset: int, batch: int) -> None:
    items = list(range(len(visible)))
    page = authz.visible_page(lambda lim, off: items[off : off + lim], lambda i: visible[i], limit, offset, batch=batch)
    assert page == [i for i in items if visible[i]][offset : offset + limit]


# ---------------------------------------------------------------- admin bootstrap


def test_bootstrap_admin_issues_once_or_takes_the_env_token(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    init_schema(engine)
    tokens = TokenStore(session_factory(engine))
    first = bootstrap_admin(tokens, None)
    assert first is not None and tokens.resolve(first) == BOOTSTRAP_ADMIN_ID
    assert bootstrap_admin(tokens, None) is None  # printed once: the next start issues nothing
    assert bootstrap_admin(tokens, ADMIN_TOKEN) is None and tokens.resolve(ADMIN_TOKEN) == BOOTSTRAP_ADMIN_ID
    assert bootstrap_admin(tokens, ADMIN_TOKEN) is None and len(tokens.list_tokens(BOOTSTRAP_ADMIN_ID)) == 2
    for bad in ("admin", "password", "gst_short"):
        with pytest.raises(ValueError, match="gst_"):
            bootstrap_admin(tokens, bad)
    for info in tokens.list_tokens(BOOTSTRAP_ADMIN_ID):
        tokens.revoke(info.id)
    again = bootstrap_admin(tokens, None)  # all revoked (a lost token): a new one on the next start
    assert again is not None and again != first
    engine.dispose()


#: Hub replicas starting at the same moment against one empty database.
RACERS = 8


def _race(fn: Callable[[], str | None], racers: int = RACERS) -> list[str | BaseException | None]:
    """``fn`` on RACERS threads released together; each thread's result or exception."""
    barrier = threading.Barrier(racers)
    out: list[str | BaseException | None] = [None] * racers

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn()
        except BaseException as exc:  # the test reports it
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return out


@pytest.mark.integration
def test_replicas_bootstrapping_the_admin_together_do_not_collide(hub_pg_engine: Engine) -> None:
    """Each replica is its own process with its own connections; here each racer has its own session factory."""
    with hub_pg_engine.begin() as conn:
        conn.execute(text("TRUNCATE api_tokens RESTART IDENTITY"))
    url = hub_pg_engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(RACERS)]
    try:
        stores = [TokenStore(session_factory(e)) for e in engines]
        turn = itertools.count()
        for round_ in range(5):  # the same env token on every replica: one row, no unique-key error
            token = f"gst_race-{round_}-" + "x" * 40
            results = _race(lambda t=token: bootstrap_admin(stores[next(turn) % RACERS], t))  # type: ignore[misc]
            assert results == [None] * RACERS, [r for r in results if r is not None]
            assert stores[0].resolve(token) == BOOTSTRAP_ADMIN_ID
        assert len(stores[0].list_tokens(BOOTSTRAP_ADMIN_ID)) == 5
        for info in stores[0].list_tokens(BOOTSTRAP_ADMIN_ID):
            stores[0].revoke(info.id)
        for _ in range(5):  # no env token: one replica issues (and prints) one token, the others none
            results = _race(lambda: bootstrap_admin(stores[next(turn) % RACERS], None))
            errors = [r for r in results if isinstance(r, BaseException)]
            assert errors == [], errors
            issued = [r for r in results if r is not None]
            assert len(issued) == 1, issued
            active = [i for i in stores[0].list_tokens(BOOTSTRAP_ADMIN_ID) if i.revoked_ms is None]
            assert len(active) == 1
            stores[0].revoke(active[0].id)
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.integration
def test_hub_prints_the_admin_token_once(
    make_hub: HubFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENV)
    capsys.readouterr()
    hub = make_hub(data_dir=tmp_path / "boot")
    out = capsys.readouterr().out
    assert "administrator token created" in out
    token = out.split("token: ", 1)[1].split()[0]
    with api(hub, token) as client:
        assert client.get("/api/v1/me").json()["roles"] == ["admin"]
        assert client.get("/api/v1/devices").status_code == 200
    with api(hub, None) as anonymous:
        assert anonymous.get("/api/v1/devices").status_code == 401
    hub.stop()
    make_hub(data_dir=tmp_path / "boot")  # second start on the same state: nothing printed
    assert "administrator token" not in capsys.readouterr().out
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "changeme")
    with pytest.raises(HubStartError, match=ADMIN_TOKEN_ENV):
        make_hub(data_dir=tmp_path / "bad")


# ------------------------------------------------------------ a real hub, per role


def publish_births(port: int, devices: dict[str, str]) -> None:
    """Retained births of camera boxes (device id -> grid), sent as the devices would."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="authz-test-births", protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for device_id, grid in devices.items():
            status = Status(DeviceState.ONLINE, 1, int(time.time() * 1000), DeviceKind.CAMERA, grid, interval_s=30)
            info = client.publish(wire.topic("site-a", device_id, Channel.STATUS), wire.encode(status), 1, True)
            info.wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def role_hub(make_hub: HubFactory, tmp_path: Path, mosquitto: Mosquitto) -> Hub:
    data_dir = tmp_path / "roles"
    data_dir.mkdir()
    (data_dir / "cases.yaml").write_text(
        (Path(__file__).parents[2] / "hub" / "cases" / "example.yaml").read_text(encoding="utf-8")
    )
    hub = make_hub(data_dir=data_dir, plugins=("hub.incidents.plugin", "hub.cases.plugin", "hub.evidence.plugin"))
    ctx = hub.ctx
    assert ctx is not None and "r1" in need(ctx.services.cases, "cases").directory.model().people
    publish_births(mosquitto.port, {"cam-g1": GRID_1, "cam-g2": GRID_2})
    wait_until(lambda: len(need(ctx.services.registry, "registry").list_public()) == 2, what="2 devices")
    return hub


def status(client: httpx.Client, method: str, url: str, **kw: Any) -> int:
    return client.request(method, url, **kw).status_code


@pytest.mark.integration
def test_roles_probed_through_the_api(role_hub: Hub) -> None:
    hub = role_hub
    assert hub.ctx is not None
    tokens: TokenStore = need(hub.ctx.services.tokens, "tokens")
    with api(hub) as admin:
        assert admin.put("/api/v1/people/int1", json={"name": "City platform", "roles": ["integration"]}).is_success
    clients = {pid: api(hub, tokens.issue_token(pid, "authz test")) for pid in
               ("op1", "sup1", "w1", "w2", "u1", "f1", "r1", "int1")}  # fmt: skip
    op, sup, w1, w2, u1, f1, r1, integ = clients.values()

    def new_case(category: str, grid: str) -> int:
        created = op.post("/api/v1/cases", json={"category": category, "title": category, "grid": grid})
        assert created.status_code == 201, created.text
        case_id = int(created.json()["id"])
        assert op.post(f"/api/v1/cases/{case_id}/dispatch", json={}).status_code == 200
        return case_id

    a, b, c = (
        new_case("environment_sanitation", GRID_1),
        new_case("environment_sanitation", GRID_2),
        new_case("fire_safety", GRID_2),
    )
    open311 = {"service_code": "environment_sanitation", "lat": "39.91", "long": "116.435", "description": "bins"}
    mine = r1.post("/open311/v2/requests.json", data=open311 | {"api_key": r1.headers["Authorization"][7:]})
    anonymous_report = httpx.post(f"{op.base_url}/open311/v2/requests.json", data=open311 | {"api_key": "app-1"})
    assert mine.status_code == 201 and anonymous_report.status_code == 201
    r, s = int(mine.json()[0]["service_request_id"]), int(anonymous_report.json()[0]["service_request_id"])
    forged = httpx.post(f"{op.base_url}/open311/v2/requests.json", data=open311 | {"api_key": "gst_" + "x" * 40})
    assert forged.status_code == 403

    def ids(client: httpx.Client) -> set[int]:
        listed = client.get("/api/v1/cases", params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        return {item["id"] for item in listed.json()}

    # lists are filtered to what each person may see
    assert ids(op) == {a, b, c, r, s} and ids(sup) == {a, b, c, r, s}
    assert ids(w1) == {a, r, s} and ids(w2) == {b, c}
    assert ids(u1) == {a, b} and ids(f1) == {c}
    assert ids(r1) == {r}
    assert [x["id"] for x in w1.get("/api/v1/cases", params={"limit": 1, "offset": 1}).json()] == [r]
    # objects outside the scope answer 404, like missing ones; acting on them too
    assert status(w1, "GET", f"/api/v1/cases/{b}") == 404 and status(w1, "GET", "/api/v1/cases/99999") == 404
    assert status(w1, "POST", f"/api/v1/cases/{b}/accept") == 404
    assert status(w2, "POST", f"/api/v1/cases/{b}/accept") == 200
    assert status(u1, "GET", f"/api/v1/cases/{c}") == 404 and status(f1, "GET", f"/api/v1/cases/{c}") == 200
    assert status(r1, "GET", f"/api/v1/cases/{s}") == 404 and status(r1, "GET", f"/api/v1/cases/{r}") == 200
    assert status(r1, "GET", f"/api/v1/cases/{r}/audit") == 403  # own report, but the trail names people
    assert status(w1, "GET", f"/api/v1/cases/{a}/audit/verify") == 403
    assert status(sup, "GET", f"/api/v1/cases/{a}/audit/verify") == 200
    # roles that never see a kind of resource: 403
    assert status(integ, "GET", "/api/v1/cases") == 403 and status(r1, "GET", "/api/v1/devices") == 403
    assert status(w1, "GET", "/api/v1/deadletters") == 403 and status(w1, "GET", "/api/v1/gaps") == 403
    assert status(w1, "GET", "/api/v1/people") == 403 and status(w1, "GET", "/api/v1/grids") == 200
    assert status(op, "PUT", "/api/v1/forces/x", json={"name": "x", "kind": "x"}) == 403  # directory: admin only

    # devices and series: grid workers see their grids' devices; integration reads everything, writes nothing
    assert [d["id"] for d in w1.get("/api/v1/devices").json()] == ["cam-g1"]
    assert status(w1, "GET", "/api/v1/devices/cam-g2") == 404 and status(w1, "GET", "/api/v1/devices/cam-g1") == 200
    assert status(w1, "GET", "/api/v1/series", params={"device": "cam-g2", "metric": "fps"}) == 404
    assert status(w1, "GET", "/api/v1/series", params={"device": "cam-g1", "metric": "fps"}) == 200
    assert len(integ.get("/api/v1/devices").json()) == 2
    assert status(integ, "GET", "/api/v1/series", params={"device": "cam-g2", "metric": "fps"}) == 200
    assert status(integ, "GET", "/api/v1/incidents") == 200 and status(integ, "GET", "/api/v1/rules") == 200
    assert status(integ, "POST", "/api/v1/rules", json={"id": "x"}) == 403
    assert status(integ, "DELETE", "/api/v1/deadletters") == 403
    assert status(integ, "POST", f"/api/v1/cases/{a}/close") == 403

    # evidence: operators/admins, supervisors of the device's area; refused for others; every access logged
    store = need(hub.ctx.services.snapshots, "snapshots")
    data = jpeg(3)
    for device_id in ("cam-g1", "cam-g2"):
        store.announce(device_id, event("ev-1", data), 1)
        assert store.store_snapshot(device_id, "ev-1", data, 2) is None
    got = op.get("/api/v1/snapshots/cam-g2/ev-1")
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()
    assert status(sup, "GET", "/api/v1/snapshots/cam-g1/ev-1") == 200
    assert status(sup, "GET", "/api/v1/snapshots/cam-g1/ev-1/meta") == 200
    for refused in (w1, u1, r1, integ):
        assert status(refused, "GET", "/api/v1/snapshots/cam-g1/ev-1") == 403
    with api(hub, None) as nobody:
        assert status(nobody, "GET", "/api/v1/snapshots/cam-g1/ev-1") == 401
    assert status(op, "GET", "/api/v1/access-audit") == 403
    with api(hub) as admin:
        log = admin.get("/api/v1/access-audit", params={"limit": 1000}).json()
    seen = sorted((e["person_id"], e["action"], e["device_id"], e["outcome"]) for e in log)
    assert seen == sorted(
        [
            ("op1", "image", "cam-g2", "allowed"),
            ("sup1", "image", "cam-g1", "allowed"),
            ("sup1", "meta", "cam-g1", "allowed"),
            *[(pid, "image", "cam-g1", "denied") for pid in ("w1", "u1", "r1", "int1")],
            ("anonymous", "image", "cam-g1", "unauthenticated"),  # the no-token attempt too (issue #21)
        ]
    )
    assert all(e["ts_ms"] > 0 and e["event_id"] == "ev-1" for e in log)

    # no token: 401 on every API route outside demo mode; /healthz and /metrics stay open
    with api(hub, None) as nobody:
        for url in ("/api/v1/devices", "/api/v1/deadletters", "/api/v1/gaps", "/api/v1/incidents", "/api/v1/cases",
                    "/api/v1/rules", "/api/v1/series?device=cam-g1&metric=fps", "/api/v1/stream", "/api/v1/me",
                    "/api/v1/access-audit", "/api/v1/grids"):  # fmt: skip
            assert status(nobody, "GET", url) == 401, url
        assert status(nobody, "GET", "/healthz") in (200, 503) and status(nobody, "GET", "/metrics") == 200
    for client in clients.values():
        client.close()


@pytest.mark.integration
def test_demo_mode_reads_anonymously_and_writes_need_a_token(make_hub: HubFactory) -> None:
    hub = make_hub(demo=True, plugins=("hub.incidents.plugin", "hub.cases.plugin", "hub.evidence.plugin"))
    with api(hub, None) as anonymous:
        for url in ("/api/v1/devices", "/api/v1/deadletters", "/api/v1/gaps", "/api/v1/incidents", "/api/v1/rules"):
            assert status(anonymous, "GET", url) == 200, url
        for method, url in (("GET", "/api/v1/cases"), ("DELETE", "/api/v1/deadletters"),
                            ("GET", "/api/v1/snapshots/cam-1/ev-1"), ("GET", "/api/v1/people"),
                            ("POST", "/api/v1/rules")):  # fmt: skip
            assert status(anonymous, method, url, **({"json": {}} if method == "POST" else {})) == 401, url
        # X-Actor names a person in demo mode only, with that person's scope
        assert status(anonymous, "GET", "/api/v1/deadletters", headers={"X-Actor": "w1"}) == 403
        assert status(anonymous, "GET", "/api/v1/cases", headers={"X-Actor": "w1"}) == 200
