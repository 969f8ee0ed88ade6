"""operator commands to devices

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "device_commands",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("op", sa.String(length=32), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("ttl_ms", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("sent_ms", sa.BigInteger(), nullable=True),
        sa.Column("deadline_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("ack_result", sa.String(length=16), nullable=True),
        sa.Column("ack_detail", sa.Text(), nullable=True),
        sa.Column("ack_data", sa.JSON(), nullable=True),
        sa.Column("ack_ms", sa.BigInteger(), nullable=True),
        sa.Column("ack_device_ts", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "idempotency_key", name="uq_device_commands_idempotency"),
    )
    with op.batch_alter_table("device_commands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_commands_created_ms"), ["created_ms"], unique=False)
        batch_op.create_index(batch_op.f("ix_device_commands_device_id"), ["device_id"], unique=False)
        batch_op.create_index("ix_device_commands_waiting", ["state", "deadline_ms"], unique=False)


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("device_commands", schema=None) as batch_op:
        batch_op.drop_index("ix_device_commands_waiting")
        batch_op.drop_index(batch_op.f("ix_device_commands_device_id"))
        batch_op.drop_index(batch_op.f("ix_device_commands_created_ms"))

    op.drop_table("device_commands")
