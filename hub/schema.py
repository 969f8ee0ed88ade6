"""The state DB's schema: every table of every feature, and the migrations that keep a database current.

Each feature declares its tables in its own models module, beside its code; this module imports
them all, so ``Base.metadata`` is complete for :func:`init_schema` and for alembic's ``env.py``.
A new table is a new models module here too (the migration test fails until it is).
"""

from __future__ import annotations

from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, inspect

from hub.cases import models as case_tables
from hub.commands import models as command_tables
from hub.db import MIGRATIONS, Base
from hub.devices import credentials as credential_tables
from hub.devices import models as device_tables
from hub.evidence import models as evidence_tables
from hub.incidents import models as incident_tables
from hub.ingest import models as deadletter_tables
from hub.security import models as token_tables

#: The modules that declare tables (imported above, so their tables are on :data:`metadata`).
TABLE_MODULES: Final = (
    device_tables,
    credential_tables,
    deadletter_tables,
    incident_tables,
    case_tables,
    token_tables,
    evidence_tables,
    command_tables,
)

#: Every table of the state DB.
metadata: Final[MetaData] = Base.metadata


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Any:
    """An alembic ``Config`` for the packaged migrations, on ``connection`` or ``url``."""
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
    with engine.begin() as conn:
        cfg = alembic_config(conn)
        if inspect(conn).has_table("alembic_version"):
            command.upgrade(cfg, "head")
        else:
            Base.metadata.create_all(conn)
            command.stamp(cfg, "head")
