"""State-DB table of dead letters: messages ingest could not accept, kept for inspection and requeue."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class DeadLetterRow(Base):
    """One refused message: topic, a bounded copy of the raw payload, why, and when."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_reason_received", "reason", "received_ms"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(512))
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    payload_size: Mapped[int] = mapped_column(BigInteger)
    truncated: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="mqtt")
    received_ms: Mapped[int] = mapped_column(BigInteger, index=True)
