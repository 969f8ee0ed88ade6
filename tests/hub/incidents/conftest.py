"""Fixtures: a fresh state DB on each backend: an SQLite file and a real PostgreSQL 15."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.db import make_engine, session_factory
from hub.schema import init_schema
from simulators.servers import Postgres


@pytest.fixture(scope="session")
def incidents_pg() -> Iterator[Postgres]:
    """One PostgreSQL cluster for these tests; each test gets its own database."""
    server = Postgres()
    server.start()
    yield server
    server.stop()


def fresh_db(url: str) -> str:
    """Create the schema at ``url`` and return it."""
    engine = make_engine(url)
    init_schema(engine)
    engine.dispose()
    return url


def sqlite_db(tmp_path: Path) -> str:
    """A fresh SQLite file state DB (a file, so several engines can share it)."""
    return fresh_db(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a fresh state DB (schema created) on each backend; modules may override it with SQLite only."""
    if request.param == "sqlite":
        return sqlite_db(tmp_path)
    server: Postgres = request.getfixturevalue("incidents_pg")
    return fresh_db(server.create_database())


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test DB."""
    eng = make_engine(db_url, pool_size=20, max_overflow=10) if db_url.startswith("postgresql") else make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory on the test DB."""
    return session_factory(engine)
