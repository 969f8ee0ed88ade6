"""cases remember the named calendar their stage clock runs on

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Upgrade the schema (existing cases keep NULL: they ran on the one default calendar)."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla_calendar", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("sla_calendar")
