"""State-DB tables of incidents, their notes, correlation groups, rules and engine state.

The partial unique indexes are what makes duplicates impossible: at most one
``open`` incident per (rule, subject) and one ``open`` group per (category,
scope), whichever thread or hub replica gets there first. Both SQLite and
PostgreSQL support partial indexes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base

OPEN = "open"
CLOSED = "closed"
#: Series ``state_code`` values for Grafana annotations.
STATE_CODES: dict[str, int] = {OPEN: 1, CLOSED: 0}

_OPEN_ONLY = text("state = 'open'")
_COLLECTING_ONLY = text("collecting = 1")


class IncidentGroupRow(Base):
    """Incidents of one category in one grid (or site, for device-offline) close together in time."""

    __tablename__ = "incident_groups"
    __table_args__ = (
        Index(
            "uq_incident_group_collecting",
            "category",
            "scope_key",
            unique=True,
            sqlite_where=_COLLECTING_ONLY,
            postgresql_where=_COLLECTING_ONLY,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(64))
    #: ``grid:<code>`` or ``site:<id>``: what the group correlates over.
    scope_key: Mapped[str] = mapped_column(String(96))
    site: Mapped[str] = mapped_column(String(64))
    grid: Mapped[str | None] = mapped_column(String(15), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    #: ``open`` while any member incident is open.
    state: Mapped[str] = mapped_column(String(8), default=OPEN, index=True)
    #: 1 while new incidents of the scope join this group (until ``last_ms`` is older than the window).
    collecting: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(256))
    opened_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    last_ms: Mapped[int] = mapped_column(BigInteger)
    closed_ms: Mapped[int | None] = mapped_column(BigInteger)


class IncidentRow(Base):
    """One incident: a rule's condition on a subject (a device, or a grid for composite rules)."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index(
            "uq_incident_open",
            "rule_id",
            "subject",
            unique=True,
            sqlite_where=_OPEN_ONLY,
            postgresql_where=_OPEN_ONLY,
        ),
        Index("ix_incidents_rule_subject", "rule_id", "subject", "closed_ms"),
        Index("ix_incidents_state_opened", "state", "opened_ms"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    rule_kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(96))
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    grid: Mapped[str | None] = mapped_column(String(15), index=True)
    category: Mapped[str] = mapped_column(String(64), index=True)
    severity: Mapped[str] = mapped_column(String(16), index=True)
    state: Mapped[str] = mapped_column(String(8), default=OPEN)
    title: Mapped[str] = mapped_column(String(256))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_value: Mapped[float | None] = mapped_column()
    #: The alarm was raised again (or reported by another replica) while this incident was open.
    repeats: Mapped[int] = mapped_column(Integer, default=0)
    #: The condition cleared and came back within the rule's flap window.
    flap_count: Mapped[int] = mapped_column(Integer, default=0)
    event_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    opened_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    closed_ms: Mapped[int | None] = mapped_column(BigInteger)
    close_reason: Mapped[str | None] = mapped_column(String(64))
    acked_by: Mapped[str | None] = mapped_column(String(64))
    acked_ms: Mapped[int | None] = mapped_column(BigInteger)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("incident_groups.id"), index=True)


class IncidentNoteRow(Base):
    """An operator's note on an incident."""

    __tablename__ = "incident_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    ts_ms: Mapped[int] = mapped_column(BigInteger)


class RuleRow(Base):
    """One rule definition (seeded from defaults.yaml, then managed through the API)."""

    __tablename__ = "rules"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16), default="api")
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class RuleEngineStateRow(Base):
    """The serialised rule-engine state of one hub instance, so a restart resumes duration windows."""

    __tablename__ = "rule_engine_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_ms: Mapped[int] = mapped_column(BigInteger)
