"""Issue #21: retention of evidence and of its access log (set by hub settings, swept by the hub's task),
and refused evidence reads in the access log — real state DBs (SQLite file, PostgreSQL), real files.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from hub.api.app import create_app
from hub.cases.plugin import build, example_config
from hub.config import HubSettings, load_settings
from hub.context import HubContext, need
from hub.db import make_engine, session_factory, sqlite_url
from hub.evidence.access_log import ANONYMOUS, DENIED, UNAUTHENTICATED, AccessLog
from hub.evidence.plugin import install
from hub.evidence.snapshots import SnapshotStore
from hub.schema import init_schema
from hub.security.auth import BOOTSTRAP_ADMIN_ID, TokenStore
from hub.security.authz import Principal
from simulators.servers import wait_until
from tests.hub.snapshots.test_store import DAY_MS, NOW_MS, Clock, event, jpeg


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty state DB with the schema: a SQLite file or the session's real PostgreSQL."""
    if request.param == "sqlite":
        own = make_engine(sqlite_url(tmp_path))
        init_schema(own)
        yield own
        own.dispose()
        return
    pg: Engine = request.getfixturevalue("hub_pg_engine")
    with pg.begin() as conn:
        conn.execute(text("TRUNCATE access_audit RESTART IDENTITY"))
    yield pg


def _context(engine: Engine, tmp_path: Path, clock: Clock, **settings: float) -> HubContext:
    ctx = HubContext(data_dir=tmp_path, engine=engine, sessions=session_factory(engine), clock=clock)
    ctx.services.settings = HubSettings(data_dir=tmp_path, demo=True, **settings)  # type: ignore[arg-type]
    install(ctx)
    return ctx


def test_retention_sweep_removes_expired_snapshots_and_access_records(engine: Engine, tmp_path: Path) -> None:
    clock = Clock()
    ctx = _context(engine, tmp_path, clock, snapshot_retention_days=2, access_log_retention_days=10)
    store: SnapshotStore = need(ctx.services.snapshots, "snapshots")
    log: AccessLog = need(ctx.services.access_log, "access_log")
    assert (store.retention_ms, log.retention_ms) == (2 * DAY_MS, 10 * DAY_MS)  # the settings, not 30 days
    for name, age_days, seed in (("old", 3, 1), ("new", 1, 2)):
        data, at = jpeg(seed), NOW_MS - age_days * DAY_MS
        assert store.announce("cam-1", event(f"ev-{name}", data), at) is None
        assert store.store_snapshot("cam-1", f"ev-{name}", data, at + 5) is None
    folder = tmp_path / "snapshots" / "cam-1"
    assert {p.name for p in folder.iterdir()} == {"ev-old.jpg", "ev-old.json", "ev-new.jpg", "ev-new.json"}
    viewer = Principal("op1", frozenset({"operator"}))
    for age_days in (11, 5):
        clock.now = (NOW_MS - age_days * DAY_MS) / 1000
        log.record(viewer, "image", "cam-1", f"ev-{age_days}", outcome="allowed")
    clock.now = NOW_MS / 1000

    [sweep] = [fn for name, fn in ctx.tasks if name == "snapshot-retention"]
    stop = threading.Event()
    thread = threading.Thread(target=sweep, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: not (folder / "ev-old.jpg").exists() and len(log.list()) == 1, timeout=10, what="sweep")
    finally:
        stop.set()
        thread.join(10)
    assert {p.name for p in folder.iterdir()} == {"ev-new.jpg", "ev-new.json"}
    assert [r["event_id"] for r in log.list()] == ["ev-5"]
    assert log.purge() == 0 and store.purge() == 0  # idempotent


def test_retention_settings_from_the_environment() -> None:
    env = {"GRIDSENTINEL_SNAPSHOT_RETENTION_DAYS": "7", "GRIDSENTINEL_ACCESS_LOG_RETENTION_DAYS": "90"}
    settings = load_settings(environ=env)
    assert (settings.snapshot_retention_days, settings.access_log_retention_days) == (7.0, 90.0)


def test_refused_evidence_reads_are_audited(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))  # its own DB: the cases directory below is seeded into it
    init_schema(engine)
    clock = Clock()
    ctx = _context(engine, tmp_path, clock)
    ctx.demo = False
    build(ctx, example_config())  # the directory: w1 is a grid worker (no evidence role)
    client = TestClient(create_app(ctx))
    tokens: TokenStore = need(ctx.services.tokens, "tokens")
    worker, admin = tokens.issue_token("w1", "test"), tokens.issue_token(BOOTSTRAP_ADMIN_ID, "test")
    assert client.get("/api/v1/snapshots/cam-1/ev-1").status_code == 401  # no token
    bad = {"Authorization": "Bearer gst_" + "x" * 40}
    assert client.get("/api/v1/snapshots/cam-1/ev-2/meta", headers=bad).status_code == 401  # unknown token
    refused = client.get("/api/v1/snapshots/cam-1/ev-3", headers={"Authorization": f"Bearer {worker}"})
    assert refused.status_code == 403  # signed in, not allowed
    log = client.get("/api/v1/access-audit", headers={"Authorization": f"Bearer {admin}"}).json()
    seen = [(r["person_id"], r["action"], r["event_id"], r["outcome"]) for r in reversed(log)]
    assert seen == [
        (ANONYMOUS, "image", "ev-1", UNAUTHENTICATED),
        (ANONYMOUS, "meta", "ev-2", UNAUTHENTICATED),
        ("w1", "image", "ev-3", DENIED),
    ]
    assert all(r["client"] for r in log)
    engine.dispose()
