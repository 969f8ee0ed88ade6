"""Alembic migrations of the hub's state DB (run by :func:`hub.schema.init_schema` and ``gridsentinel hub db``)."""
