"""The hub's state store: SQLAlchemy 2 over SQLite (default) or PostgreSQL.

Every feature declares its tables on :class:`Base` in its own models module;
:mod:`hub.schema` imports them all and brings a database to the current schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, sessionmaker


class Base(DeclarativeBase):
    """Declarative base for every hub table."""


#: Where alembic finds the migration scripts (``hub/migrations``).
MIGRATIONS: Final = "hub:migrations"


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
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout. A server database gets
    ``pool_pre_ping``: after the server restarted, a pooled connection is replaced when it is checked
    out instead of failing the request that drew it."""
    if not url.startswith("sqlite"):
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Any]:
    """A session factory that keeps objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
