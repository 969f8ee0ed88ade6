"""API tokens: stored hashed, resolved, revoked; Bearer sign-in on the case API; X-Actor only in demo mode."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from edge.cli import main
from hub.api.app import create_app
from hub.cases import api as cases_api
from hub.cases.plugin import build, example_config
from hub.context import HubContext, need
from hub.db import make_engine, session_factory, sqlite_url
from hub.schema import init_schema
from hub.security.auth import TokenStore, bearer_token
from hub.security.models import ApiTokenRow


def make_ctx(tmp_path: Path, demo: bool) -> HubContext:
    engine = make_engine(sqlite_url(tmp_path))
    init_schema(engine)
    ctx = HubContext(data_dir=tmp_path, engine=engine, sessions=session_factory(engine), demo=demo)
    build(ctx, example_config())
    ctx.add_router(cases_api.router)
    return ctx


@pytest.fixture(params=[False, True], ids=["production", "demo"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubContext]:
    context = make_ctx(tmp_path, demo=request.param)
    yield context
    context.engine.dispose()


def test_tokens_are_stored_hashed_resolved_and_revoked(tmp_path: Path) -> None:
    clock = [1000.0]
    engine = make_engine(sqlite_url(tmp_path))
    init_schema(engine)
    store = TokenStore(session_factory(engine), clock=lambda: clock[0])
    token = store.issue_token("op1", "wall screen")
    other = store.issue_token("sup1")
    assert token.startswith("gst_") and token != other and len(token) > 40
    with session_factory(engine)() as s:
        stored = list(s.scalars(select(ApiTokenRow.token_sha256)))
    assert hashlib.sha256(token.encode()).hexdigest() in stored and token not in stored
    assert store.resolve(token) == "op1" and store.resolve(other) == "sup1"
    for bad in ("", "gst_", "gst_nope", token + "x", token[4:], "gst_" + "a" * 500):
        assert store.resolve(bad) is None
    [info] = store.list_tokens("op1")
    assert (info.label, info.created_ms, info.last_used_ms) == ("wall screen", 1_000_000, 1_000_000)
    assert store.revoke(info.id) and not store.revoke(info.id) and not store.revoke(9999)
    assert store.resolve(token) is None and store.resolve(other) == "sup1"
    assert store.revoke_token(other) and store.resolve(other) is None
    with pytest.raises(ValueError, match="person id"):
        store.issue_token("")
    engine.dispose()


def test_bearer_header_parsing() -> None:
    assert bearer_token(None) is None and bearer_token("  ") is None
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    for bad in ("Basic abc", "Bearer", "abc"):
        with pytest.raises(Exception, match="401"):
            bearer_token(bad)


def test_case_api_signs_in_with_bearer_tokens(ctx: HubContext) -> None:
    client = TestClient(create_app(ctx))
    tokens: TokenStore = need(ctx.services.tokens, "tokens")
    op = {"Authorization": f"Bearer {tokens.issue_token('op1')}"}
    worker = {"Authorization": f"Bearer {tokens.issue_token('w1')}"}
    assert client.get("/api/v1/cases", headers=op).status_code == 200
    me = client.get("/api/v1/me", headers=op).json()
    assert (me["id"], me["roles"], me["evidence"]) == ("op1", ["operator"], True)
    assert client.get("/api/v1/me", headers=worker).json()["evidence"] is False

    body = {"category": "environment_sanitation", "title": "bins", "grid": "110105001001001"}
    assert client.post("/api/v1/cases", json=body, headers=worker).status_code == 403  # roles still apply
    created = client.post("/api/v1/cases", json=body, headers=op)
    assert created.status_code == 201
    trail = client.get(f"/api/v1/cases/{created.json()['id']}/audit", headers=op).json()
    assert {e["actor"] for e in trail} == {"op1"}  # the token's person is the actor

    refused = client.get("/api/v1/cases")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    bad = client.get("/api/v1/cases", headers={"Authorization": "Bearer gst_forged"})
    assert bad.status_code == 401 and bad.json()["detail"]["reason"] == "bad_token"
    assert client.get("/api/v1/me").status_code == 401

    # a token whose person left the directory signs nobody in
    ghost = {"Authorization": f"Bearer {tokens.issue_token('nobody')}"}
    assert client.get("/api/v1/cases", headers=ghost).status_code == 401

    # X-Actor names the acting person in demo mode only
    as_header = client.get("/api/v1/cases", headers={"X-Actor": "op1"})
    assert as_header.status_code == (200 if ctx.demo else 401)
    if not ctx.demo:
        assert "demo mode" in as_header.json()["detail"]["message"]


def test_stream_checks_a_token_given_in_the_query(ctx: HubContext) -> None:
    client = TestClient(create_app(ctx))
    assert client.get("/api/v1/stream?token=gst_forged").status_code == 401
    bad_header = client.get("/api/v1/stream", headers={"Authorization": "Basic x"})
    assert bad_header.status_code == 401


def test_page_and_its_modules_are_served(ctx: HubContext) -> None:
    client = TestClient(create_app(ctx))
    page = client.get("/")
    assert page.status_code == 200 and "/web/app.js" in page.text
    for name in ("app.js", "api.js", "board.js", "charts.js", "i18n.js", "map.js", "style.css"):
        served = client.get(f"/web/{name}")
        assert served.status_code == 200, name
        assert served.headers["content-type"].startswith(("text/javascript", "application/javascript", "text/css"))


def test_cli_issues_lists_and_revokes_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "hub"
    assert main(["hub", "token", "issue", "op1", "--data-dir", str(data)]) == 2  # no state DB yet
    assert "run the hub once" in capsys.readouterr().err
    data.mkdir()
    make_ctx(data, demo=False).engine.dispose()  # a state DB with the example city's people
    assert main(["hub", "token", "issue", "ghost", "--data-dir", str(data)]) == 2
    assert "unknown person 'ghost'" in capsys.readouterr().err
    assert main(["hub", "token", "issue", "op1", "--label", "wall", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    token = out.splitlines()[1]
    assert f"/?token={token}" in out
    engine = make_engine(sqlite_url(data))
    store = TokenStore(session_factory(engine))
    assert store.resolve(token) == "op1"
    assert main(["hub", "token", "list", "--data-dir", str(data)]) == 0
    assert "op1\tactive\twall" in capsys.readouterr().out
    assert main(["hub", "token", "revoke", "1", "--data-dir", str(data)]) == 0
    assert store.resolve(token) is None
    assert main(["hub", "token", "revoke", "1", "--data-dir", str(data)]) == 1
    engine.dispose()
