"""The hub's state store: SQLAlchemy 2 over SQLite (default) or PostgreSQL.

Every subsystem declares its tables on :class:`Base` in its own models module and
lists that module in :data:`MODEL_MODULES`, so that :func:`init_schema` (and the
alembic migrations) see every table.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, sessionmaker


class Base(DeclarativeBase):
    """Declarative base for every hub table."""


#: Modules that declare tables on :class:`Base`; imported before creating the schema.
MODEL_MODULES: Final[tuple[str, ...]] = (
    "hub.registry_models",
    "hub.deadletter_models",
    "hub.incidents.models",
    "hub.cases.models",
)


def sqlite_url(data_dir: Path) -> str:
    """The default state database under the hub's data dir."""
    return f"sqlite:///{data_dir / 'state.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def load_models() -> None:
    """Import every module that declares tables, so ``Base.metadata`` is complete."""
    for name in MODEL_MODULES:
        importlib.import_module(name)


def init_schema(engine: Engine) -> None:
    """Create any missing tables (alembic migrations take over for upgrades)."""
    load_models()
    Base.metadata.create_all(engine)


def session_factory(engine: Engine) -> sessionmaker[Any]:
    """A session factory that keeps objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
