"""The alembic migrations give exactly the models' schema, on SQLite and real PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from hub.db import make_engine, sqlite_url
from hub.schema import alembic_config, init_schema, metadata
from simulators.servers import Postgres


@pytest.fixture(scope="module")
def pg_server() -> Iterator[Postgres]:
    """One real PostgreSQL for this module; each test gets its own database."""
    server = Postgres()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        engine = make_engine(sqlite_url(tmp_path))
    else:
        server: Postgres = request.getfixturevalue("pg_server")
        engine = make_engine(server.create_database(name=f"gs_mig_{next(_names)}"))
    yield engine
    engine.dispose()


_names = itertools.count()


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _version(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_upgrade_head_matches_the_models_and_downgrade_removes_everything(empty_engine: Engine) -> None:
    with empty_engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert _version(empty_engine) == _head()
    with empty_engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diffs == [], f"models and migrations differ; add a migration: {diffs}"
    with empty_engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}


def test_init_schema_creates_stamps_and_is_idempotent(empty_engine: Engine) -> None:
    init_schema(empty_engine)
    assert _version(empty_engine) == _head()
    tables = set(inspect(empty_engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= tables
    init_schema(empty_engine)  # an up-to-date database: upgrade is a no-op
    assert _version(empty_engine) == _head()


def test_pre_migration_database_is_completed_and_stamped(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    first = metadata.sorted_tables[0]
    first.create(engine)  # a database from before migrations: some tables, no alembic_version
    init_schema(engine)
    assert _version(engine) == _head()
    assert {t.name for t in metadata.sorted_tables} <= set(inspect(engine).get_table_names())
    engine.dispose()
