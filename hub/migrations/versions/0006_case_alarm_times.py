"""device cases remember when their alarm was raised on the device and received by the hub

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 12:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Upgrade the schema (existing cases keep NULL: their alarm times were not kept)."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alarm_raised_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("alarm_received_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("alarm_received_ms")
        batch_op.drop_column("alarm_raised_ms")
