"""SQLAlchemy tables of the case workflow (all prefixed ``case_`` / ``cases``).

Integrity lives in the schema too: one case per incident group (unique
``group_id``), one audit row per (case, seq), one idempotency record per key and
one outbox row per delivery key, so replicas cannot double anything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class GridRow(Base):
    """A district, street, community or unit grid."""

    __tablename__ = "case_grids"
    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    households: Mapped[int] = mapped_column(Integer, default=0)
    population: Mapped[int] = mapped_column(Integer, default=0)
    polygon: Mapped[list[Any]] = mapped_column(JSON, default=list)


class ForceRow(Base):
    """A professional force."""

    __tablename__ = "case_forces"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))


class PersonRow(Base):
    """A person with roles, an optional force and responsibilities (JSON list of {grids, categories})."""

    __tablename__ = "case_people"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    force_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("case_forces.id"), nullable=True)
    responsibilities: Mapped[list[Any]] = mapped_column(JSON, default=list)


class RouteRow(Base):
    """Routing data: category → responsible force."""

    __tablename__ = "case_routes"
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    force_id: Mapped[str] = mapped_column(String(64), ForeignKey("case_forces.id"))


class CaseRow(Base):
    """One case; ``version`` increases on every change (ETag / conditional UPDATE)."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # the ORM adds "AND version = :old" to every UPDATE and raises StaleDataError on a lost race
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    source: Mapped[str] = mapped_column(String(16))
    group_id: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(32), default="normal")
    grid_code: Mapped[str | None] = mapped_column(String(15), nullable=True, index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    reporter_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    assignees: Mapped[list[str]] = mapped_column(JSON, default=list)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    force_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    handler_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verified_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    satisfaction: Mapped[int | None] = mapped_column(Integer, nullable=True)
    merged_into: Mapped[int | None] = mapped_column(Integer, nullable=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    stage_started_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stage_limit_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # the named calendar the stage clock runs on (NULL: rows from before calendars = the default one)
    sla_calendar: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stage_paused_s: Mapped[float] = mapped_column(Float, default=0.0)
    paused_since_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sla_level: Mapped[str] = mapped_column(String(8), default="green")
    breached: Mapped[bool] = mapped_column(Boolean, default=False)
    incident_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: Device cases: when the first alarm was raised on the device and received by the hub (apart
    #: when it was replayed after an outage; the evaluation counts the lateness).
    alarm_raised_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    alarm_received_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    dispatched_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    accepted_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    feedback_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    closed_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    audit_head: Mapped[str] = mapped_column(String(64))
    audit_count: Mapped[int] = mapped_column(Integer, default=0)
    # the emergency plan guiding the case and its checklist (hub.cases.plans); NULL: no plan matched
    plan_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    plan_steps: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # SHA-256 of the face-filtered photo a resident filed with the report (hub.cases.media)
    media_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # messages (hub.texts.catalogue) of the texts the hub wrote, e.g. {"title": {...}}: rendered in the reader's
    # language; NULL: rows from before, and texts people wrote (title and description read as stored)
    texts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class CaseEventRow(Base):
    """One append-only, hash-chained audit entry."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_events_case_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(Integer, ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[str]] = mapped_column(JSON, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class IdempotencyRow(Base):
    """A remembered transition result for an Idempotency-Key."""

    __tablename__ = "case_idempotency"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class OutboxRow(Base):
    """A webhook delivery waiting (or done), written in the same transaction as the audit entry."""

    __tablename__ = "case_outbox"
    __table_args__ = (Index("ix_case_outbox_pending", "delivered_ms", "case_id", "event_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_key: Mapped[str] = mapped_column(String(200), unique=True)
    target: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    event_seq: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")


#: Every table this module declares (the plug-in creates just these when the hub has not).
TABLE_NAMES = frozenset(
    t.__tablename__ for t in (GridRow, ForceRow, PersonRow, RouteRow, CaseRow, CaseEventRow, IdempotencyRow, OutboxRow)
)
