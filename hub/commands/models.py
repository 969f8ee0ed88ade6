"""State-DB table of operator commands: one row per command, from request to ack or timeout."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class CommandRow(Base):
    """A command sent (or to be sent) to one device, and what became of it."""

    __tablename__ = "device_commands"
    __table_args__ = (
        # the same Idempotency-Key on the same device is the same command (NULL keys never collide)
        UniqueConstraint("device_id", "idempotency_key", name="uq_device_commands_idempotency"),
        # the sweep's query: commands still waiting, by deadline
        Index("ix_device_commands_waiting", "state", "deadline_ms"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    site: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    ttl_ms: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    sent_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: Hub clock: queued -> created + ttl (then expired unsent); sent -> sent + ttl + margin (then timed_out).
    deadline_ms: Mapped[int] = mapped_column(BigInteger)
    finished_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ack_result: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ack_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    ack_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: When the hub received the ack (hub clock) and the device's own ``ts`` of it (device clock, shown only).
    ack_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ack_device_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
