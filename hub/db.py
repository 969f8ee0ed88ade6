"""The hub's state store: SQLAlchemy 2 over SQLite (default) or PostgreSQL.

Every subsystem declares its tables on :class:`Base` in its own models module and
lists that module in :data:`MODEL_MODULES`, so that :func:`init_schema` (and the
alembic migrations) see every table.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.orm import DeclarativeBase, sessionmaker


class Base(DeclarativeBase):
    """Declarative base for every hub table."""


#: Modules that declare tables on :class:`Base`; imported before creating the schema.
MODEL_MODULES: Final[tuple[str, ...]] = (
    "hub.devices.models",
    "hub.ingest.models",
    "hub.incidents.models",
    "hub.cases.models",
    "hub.security.models",
    "hub.evidence.models",
    "hub.devices.credentials",
    "hub.commands.models",
)


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


def load_models() -> None:
    """Import every module that declares tables, so ``Base.metadata`` is complete."""
    for name in MODEL_MODULES:
        importlib.import_module(name)


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Any:
    """An alembic ``Config`` for the packaged migrations, on ``connection`` or ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def init_schema(engine: Engine) -> None:
    """Bring the state DB to the current schema.

    A database alembic already manages is upgraded to ``head``; a new (or pre-migration)
    one gets the missing tables from the models and is stamped ``head`` -- the migration
    test proves that ``upgrade head`` and the models give the same schema.
    """
    from alembic import command

    load_models()
    with engine.begin() as conn:
        cfg = alembic_config(conn)
        if inspect(conn).has_table("alembic_version"):
            command.upgrade(cfg, "head")
        else:
            Base.metadata.create_all(conn)
            command.stamp(cfg, "head")


def session_factory(engine: Engine) -> sessionmaker[Any]:
    """A session factory that keeps objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
