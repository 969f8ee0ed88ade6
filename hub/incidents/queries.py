"""Read side of incidents and groups (filters for the API), plus operator notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.incidents.models import OPEN, IncidentGroupRow, IncidentNoteRow, IncidentRow
from hub.incidents.service import IncidentNotFoundError
from hub.incidents.views import MEMBER_COLUMNS, group_public, incident_public, note_public

MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """What to list; ``None`` means any. Times are ms and bound ``opened_ms``."""

    state: str | None = None
    category: str | None = None
    severity: str | None = None
    grid: str | None = None
    site: str | None = None
    device: str | None = None
    rule: str | None = None
    group_id: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 100
    offset: int = 0


class IncidentQueries:
    """Lists and details for the API."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def list_incidents(self, f: IncidentFilter) -> list[dict[str, Any]]:
        """Incidents matching ``f``, newest first."""
        stmt = select(IncidentRow)
        if f.state:
            stmt = stmt.where(IncidentRow.state == f.state)
        if f.category:
            stmt = stmt.where(IncidentRow.category == f.category)
        if f.severity:
            stmt = stmt.where(IncidentRow.severity == f.severity)
        if f.grid:
            # a grid prefix selects a community, street or district
            stmt = stmt.where(IncidentRow.grid.startswith(f.grid, autoescape=True))
        if f.site:
            stmt = stmt.where(IncidentRow.site == f.site)
        if f.device:
            stmt = stmt.where(IncidentRow.device_id == f.device)
        if f.rule:
            stmt = stmt.where(IncidentRow.rule_id == f.rule)
        if f.group_id is not None:
            stmt = stmt.where(IncidentRow.group_id == f.group_id)
        if f.since_ms is not None:
            stmt = stmt.where(IncidentRow.opened_ms >= f.since_ms)
        if f.until_ms is not None:
            stmt = stmt.where(IncidentRow.opened_ms < f.until_ms)
        stmt = stmt.order_by(IncidentRow.opened_ms.desc(), IncidentRow.id.desc())
        stmt = stmt.limit(max(1, min(f.limit, MAX_LIMIT))).offset(max(0, f.offset))
        with self._sessions() as s:
            return [incident_public(r) for r in s.scalars(stmt)]

    def open_by_grid(self, area: str | None = None) -> dict[str | None, int]:
        """How many incidents are open per grid code (in ``area``, a grid-code prefix, when given)."""
        stmt = select(IncidentRow.grid, func.count()).where(IncidentRow.state == OPEN).group_by(IncidentRow.grid)
        if area:
            stmt = stmt.where(IncidentRow.grid.startswith(area, autoescape=True))
        with self._sessions() as s:
            return {grid: int(n) for grid, n in s.execute(stmt)}

    def incident(self, incident_id: int) -> dict[str, Any]:
        """One incident with its notes."""
        with self._sessions() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise IncidentNotFoundError("incident", incident_id)
            notes = s.scalars(
                select(IncidentNoteRow).where(IncidentNoteRow.incident_id == incident_id).order_by(IncidentNoteRow.id)
            )
            return incident_public(row) | {"notes": [note_public(n) for n in notes]}

    def add_note(self, incident_id: int, author: str, text: str, ts_ms: int) -> dict[str, Any]:
        """Append an operator note."""
        with self._sessions() as s, s.begin():
            note = IncidentNoteRow(incident_id=incident_id, author=author, text=text, ts_ms=ts_ms)
            s.add(note)
            if s.get(IncidentRow, incident_id) is None:
                raise IncidentNotFoundError("incident", incident_id)
            s.flush()
            return note_public(note)

    def list_groups(
        self, *, state: str | None = None, category: str | None = None, grid: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Correlation groups, newest first."""
        stmt = select(IncidentGroupRow)
        if state:
            stmt = stmt.where(IncidentGroupRow.state == state)
        if category:
            stmt = stmt.where(IncidentGroupRow.category == category)
        if grid:
            stmt = stmt.where(IncidentGroupRow.grid.startswith(grid, autoescape=True))
        stmt = stmt.order_by(IncidentGroupRow.opened_ms.desc()).limit(max(1, min(limit, MAX_LIMIT)))
        with self._sessions() as s:
            return [self._group(s, g) for g in s.scalars(stmt).all()]

    def group(self, group_id: int) -> dict[str, Any]:
        """One group with its member ids."""
        with self._sessions() as s:
            g = s.get(IncidentGroupRow, group_id)
            if g is None:
                raise IncidentNotFoundError("group", group_id)
            return self._group(s, g)

    @staticmethod
    def _group(s: Session, g: IncidentGroupRow) -> dict[str, Any]:
        members = s.execute(select(*MEMBER_COLUMNS).where(IncidentRow.group_id == g.id)).all()
        return group_public(g, members)
