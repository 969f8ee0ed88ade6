"""access audit of evidence

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 08:48:39.523056
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    if sa.inspect(op.get_bind()).has_table("access_audit"):
        return  # created by hub.evidence.access_log before this revision existed
    op.create_table(
        "access_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("access_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_audit_person_id"), ["person_id"], unique=False)
        batch_op.create_index("ix_access_audit_resource", ["device_id", "event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_audit_ts_ms"), ["ts_ms"], unique=False)


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("access_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_audit_ts_ms"))
        batch_op.drop_index("ix_access_audit_resource")
        batch_op.drop_index(batch_op.f("ix_access_audit_person_id"))

    op.drop_table("access_audit")
