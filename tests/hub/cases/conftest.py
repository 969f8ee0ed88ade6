"""Case workflow fixtures: every API test runs on SQLite and on a real PostgreSQL 15."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from hub.api.app import create_app
from hub.cases import api, open311
from hub.cases.plugin import build, example_config
from hub.cases.service import CaseService, WebhookTarget
from hub.context import HubContext
from hub.db import make_engine, session_factory
from hub.schema import init_schema
from simulators.servers import Postgres, free_port, wait_until


class FakeClock:
    """A settable clock (epoch seconds) shared by the context and the service."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self.lock:
            self.now += seconds


#: Monday 2026-11-23 10:00 in Beijing (UTC+8), inside working hours.
MONDAY_10AM = 1795399200.0


PG_TEMPLATE = "gs_cases_template"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """One PostgreSQL cluster for the session; each test copies a template with the schema and example city."""
    server = Postgres()
    server.start()
    seeded = make_env(server.create_database(name=PG_TEMPLATE), tmp_path_factory.mktemp("pg-template"))
    seeded.ctx.engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template idle
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    server: Postgres = request.getfixturevalue("pg_server")
    return server.create_database(template=PG_TEMPLATE)


@dataclass
class CasesEnv:
    """A hub context with the case service, its clock, and optionally a live HTTP server."""

    ctx: HubContext
    svc: CaseService
    clock: FakeClock
    base_url: str = ""

    def client(self, actor: str | None = None) -> httpx.Client:
        """An HTTP client acting as ``actor`` (X-Actor header)."""
        headers = {"X-Actor": actor} if actor else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=15)


def finish_plan(client: httpx.Client, case_id: int, steps: tuple[str, ...] = ("recover", "review")) -> None:
    """Mark the plan steps that block closing done (as ``client``'s person, e.g. a supervisor)."""
    for step in steps:
        response = client.post(f"/api/v1/cases/{case_id}/plan/{step}", json={"note": f"{step} done"})
        assert response.status_code == 200, response.text


def make_env(db_url: str, tmp_path: Path, targets: list[WebhookTarget] | None = None) -> CasesEnv:
    """Context + schema + service on ``db_url`` with the example city and a fake clock."""
    engine = (
        make_engine(db_url, pool_size=25, max_overflow=10) if db_url.startswith("postgresql") else make_engine(db_url)
    )
    init_schema(engine)
    clock = FakeClock(MONDAY_10AM)
    # demo=True: these tests name the acting person with X-Actor (honoured in demo mode only)
    ctx = HubContext(data_dir=tmp_path, engine=engine, sessions=session_factory(engine), clock=clock, demo=True)
    svc = build(ctx, example_config())
    svc.targets = list(targets or [])
    return CasesEnv(ctx, svc, clock)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[CasesEnv]:
    """The case service on each backend, without HTTP."""
    cases = make_env(db_url, tmp_path)
    yield cases
    cases.ctx.engine.dispose()


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[CasesEnv]:
    """The real hub app (core + case routers) served by uvicorn on a free port, on each backend."""
    cases = make_env(db_url, tmp_path)
    cases.ctx.add_router(api.router)
    cases.ctx.add_router(open311.router)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(cases.ctx), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="uvicorn start")
    cases.base_url = f"http://127.0.0.1:{port}"
    yield cases
    server.should_exit = True
    thread.join(10)
    cases.ctx.engine.dispose()
