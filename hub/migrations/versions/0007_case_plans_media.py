"""cases carry an emergency plan's checklist and a resident's filtered photo

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Upgrade the schema (existing cases keep NULL: no plan, no photo)."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("plan_steps", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("media_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("media_sha256")
        batch_op.drop_column("plan_steps")
        batch_op.drop_column("plan_id")
