"""State-DB tables of the device registry and the data-loss log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class DeviceRow(Base):
    """One known device, its session and its latest values (flushed periodically, not per message)."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str | None] = mapped_column(String(32))
    grid: Mapped[str | None] = mapped_column(String(15), index=True)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str | None] = mapped_column(String(16))
    status_ts_ms: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    interval_s: Mapped[float | None] = mapped_column(Float)
    agent: Mapped[str | None] = mapped_column(String(64))
    last_seen_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    latest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    latest_ts_ms: Mapped[int | None] = mapped_column(BigInteger)
    flaps_suppressed: Mapped[int] = mapped_column(Integer, default=0)


class DataLossRow(Base):
    """Seqs of one device that will never arrive: declared by the device or a gap that timed out."""

    __tablename__ = "data_loss"
    __table_args__ = (Index("ix_data_loss_device_first", "device_id", "first"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(64))
    first: Mapped[int] = mapped_column(BigInteger)
    last: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(BigInteger)
    cause: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(256))
    opened_ms: Mapped[int] = mapped_column(BigInteger)
    recorded_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class OpenGapRow(Base):
    """A seq gap still waiting for its messages, saved so a hub restart keeps waiting for it."""

    __tablename__ = "open_gaps"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger)
    high: Mapped[int] = mapped_column(BigInteger)
    opened_ms: Mapped[int] = mapped_column(BigInteger)
    resend_ms: Mapped[int | None] = mapped_column(BigInteger)
