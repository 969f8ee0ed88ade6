"""Incident lifecycle on the state DB: open, repeat, flap, clear, correlate into groups.

Every write is one short transaction whose first statement is a write, so SQLite
takes its write lock up front and PostgreSQL row locks do the rest. Uniqueness is
the database's job (see :mod:`hub.incidents.models`): an insert that collides
with an open incident becomes a repeat of it, whichever thread or replica lost
the race. After commit, changes go to the bus, the case workflow and the series
writer; a failure there is logged and never undoes the stored change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

from sqlalchemy import and_, func, literal_column, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from hub.bus import EventBus
from hub.incidents.models import CLOSED, OPEN, STATE_CODES, IncidentGroupRow, IncidentRow
from hub.incidents.views import MEMBER_COLUMNS, group_public, incident_public
from hub.rules.models import SEVERITY_RANK
from hub.rules.state import Candidate
from hub.series.base import PointWriter, SeriesPoint
from hub.texts.catalogue import TEXTS

logger = logging.getLogger(__name__)

ChangeKind: TypeAlias = Literal[
    "opened", "reopened", "repeated", "flapped", "updated", "closed", "acknowledged", "recorded"
]

#: Incidents of one category and scope that start within this many seconds of each other form one group.
DEFAULT_GROUP_WINDOW_S = 300.0
_ATTEMPTS = 6
#: Close reason of an alarm raised and cleared while its device was cut off (a flap reopens it).
CLEARED_OFFLINE = "cleared_offline"
_OPEN_LITERAL: ColumnElement[str] = literal_column("'open'")
#: Bulk UPDATEs here touch rows no session holds; skip the ORM's in-session synchronisation.
_NO_SYNC = {"synchronize_session": False}
#: ...so rows read back after such an UPDATE must overwrite whatever the session holds.
_FRESH = {"populate_existing": True}


class IncidentNotFoundError(LookupError):
    """No incident (or group) with this id."""

    def __init__(self, what: str, ident: int) -> None:
        super().__init__(f"{what} {ident} not found")
        self.what = what
        self.ident = ident


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """One stored change, as published."""

    kind: ChangeKind
    incident: dict[str, Any]
    group: dict[str, Any] | None = None
    #: The group opened, gained a member, or closed: the case workflow hears about it.
    group_changed: bool = False
    candidate: Candidate | None = field(default=None, compare=False)


def scope_key(rule_kind: str, site: str, grid: str | None) -> str:
    """What incidents correlate over: the site for device-offline, else the grid (site if none)."""
    if rule_kind == "offline" or grid is None:
        return f"site:{site}"
    return f"grid:{grid}"


class CaseIntake(Protocol):
    """Who turns incident groups into cases (the case service)."""

    def on_incident_group(self, data: Mapping[str, Any]) -> object: ...


class IncidentPeers(Protocol):
    """What the incident service takes from the other parts (the hub's ``ctx.services``), late-bound:
    the case service is installed after this one."""

    @property
    def cases(self) -> CaseIntake | None: ...

    @property
    def writer(self) -> PointWriter | None: ...


class IncidentService:
    """Applies engine candidates and operator actions to the state DB, then publishes them."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        bus: EventBus | None = None,
        services: IncidentPeers | None = None,
        clock: Callable[[], float] = time.time,
        group_window_s: float = DEFAULT_GROUP_WINDOW_S,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._services = services
        self._clock = clock
        self.group_window_ms = int(group_window_s * 1000)
        #: Called with (rule_id, subject) when an operator closes an incident by hand.
        self.on_manual_close: list[Callable[[str, str], None]] = []

    # ------------------------------------------------------------- candidates

    def apply(self, candidates: Sequence[Candidate]) -> list[IncidentChange]:
        """Store each candidate, then publish what changed."""
        changes: list[IncidentChange] = []
        for cand in candidates:
            change = self._retry(lambda s, c=cand: self._apply_one(s, c))  # type: ignore[misc]
            if change is not None:
                changes.append(change)
                self._publish(change)
        return changes

    def _retry(self, fn: Callable[[Session], IncidentChange | None]) -> IncidentChange | None:
        for attempt in range(_ATTEMPTS):
            session = self._sessions()
            try:
                with session.begin():
                    return fn(session)
            except IntegrityError:
                # lost a race on a unique key: the next attempt sees the winner's row
                logger.debug("unique-key race, attempt %s", attempt + 1)
            except OperationalError as exc:
                transient = any(w in str(exc) for w in ("locked", "deadlock", "could not serialize"))
                if not transient or attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
            finally:
                session.close()
        raise RuntimeError(f"incident write did not settle after {_ATTEMPTS} attempts")

    def _apply_one(self, s: Session, c: Candidate) -> IncidentChange | None:
        if c.action == "record":
            return self._record(s, c)
        if c.action == "clear":
            return self._close(s, c.rule_id, c.subject, c.ts_ms, reason="cleared", c=c)
        if c.action == "open" and c.flap:
            change = self._reopen(s, c)
            if change is not None:
                return change
        # an open for a key that is already open (another thread or replica won) is a repeat;
        # the UPDATE also takes SQLite's write lock before anything is read
        change = self._bump(s, c)
        if change is not None:
            return change
        return self._insert(s, c)

    def _key(self, rule_id: str, subject: str) -> Any:
        # the literal lets SQLite (and PostgreSQL generic plans) use the partial unique index
        return and_(IncidentRow.rule_id == rule_id, IncidentRow.subject == subject, IncidentRow.state == _OPEN_LITERAL)

    def _bump(self, s: Session, c: Candidate) -> IncidentChange | None:
        values: dict[str, Any] = {"updated_ms": c.ts_ms, "last_value": c.value}
        if c.flap:
            values["flap_count"] = IncidentRow.flap_count + 1
        else:
            values["repeats"] = IncidentRow.repeats + 1
        stmt = update(IncidentRow).where(self._key(c.rule_id, c.subject)).values(**values)
        if s.execute(stmt, execution_options=_NO_SYNC).rowcount == 0:  # type: ignore[attr-defined]
            return None
        row = s.scalars(select(IncidentRow).where(self._key(c.rule_id, c.subject)), execution_options=_FRESH).one()
        if c.event_id and c.event_id not in row.event_ids:
            row.event_ids = [*row.event_ids[-19:], c.event_id]
        return IncidentChange("flapped" if c.flap else "repeated", incident_public(row), candidate=c)

    def _reopen(self, s: Session, c: Candidate) -> IncidentChange | None:
        latest = (
            select(IncidentRow.id)
            .where(IncidentRow.rule_id == c.rule_id, IncidentRow.subject == c.subject, IncidentRow.state == CLOSED)
            .where(IncidentRow.close_reason.in_(("cleared", CLEARED_OFFLINE)))
            .order_by(IncidentRow.closed_ms.desc())
            .limit(1)
            .scalar_subquery()
        )
        stmt = (
            update(IncidentRow)
            .where(IncidentRow.id == latest, IncidentRow.state == CLOSED)
            .values(
                state=OPEN,
                closed_ms=None,
                close_reason=None,
                updated_ms=c.ts_ms,
                last_value=c.value,
                flap_count=IncidentRow.flap_count + 1,
            )
        )
        if s.execute(stmt, execution_options=_NO_SYNC).rowcount == 0:  # type: ignore[attr-defined]
            return None
        row = s.scalars(select(IncidentRow).where(self._key(c.rule_id, c.subject)), execution_options=_FRESH).one()
        group, changed = self._join_group(s, row, c.ts_ms)
        return IncidentChange("reopened", incident_public(row), group, changed, c)

    def _record(self, s: Session, c: Candidate) -> IncidentChange:
        """An alarm raised and cleared while its device was cut off: stored closed, in no group, so no
        case is made and nobody is paged; the record keeps both times of both ends."""
        row = self._row(c)
        cleared_ms = int(c.detail.get("cleared_ms", c.ts_ms))
        row.state, row.closed_ms, row.updated_ms, row.close_reason = CLOSED, cleared_ms, cleared_ms, CLEARED_OFFLINE
        s.add(row)
        s.flush()
        return IncidentChange("recorded", incident_public(row), candidate=c)

    def _insert(self, s: Session, c: Candidate) -> IncidentChange:
        row = self._row(c)
        s.add(row)
        s.flush()  # raises IntegrityError when the key is already open: the retry then bumps it
        group, changed = self._join_group(s, row, c.ts_ms)
        return IncidentChange("opened", incident_public(row), group, changed, c)

    @staticmethod
    def _row(c: Candidate) -> IncidentRow:
        return IncidentRow(
            rule_id=c.rule_id,
            rule_kind=c.rule_kind,
            subject=c.subject,
            device_id=c.device_id,
            site=c.site,
            grid=c.grid,
            category=c.category,
            severity=c.severity,
            state=OPEN,
            title=c.title,
            detail=dict(c.detail) | ({TEXTS: {"title": dict(c.title_msg)}} if c.title_msg else {}),
            last_value=c.value,
            repeats=0,
            flap_count=0,
            event_ids=[c.event_id] if c.event_id else [],
            opened_ms=c.ts_ms,
            updated_ms=c.ts_ms,
        )

    def _join_group(self, s: Session, row: IncidentRow, ts: int) -> tuple[dict[str, Any], bool]:
        key = scope_key(row.rule_kind, row.site, row.grid)
        where = and_(
            IncidentGroupRow.category == row.category,
            IncidentGroupRow.scope_key == key,
            IncidentGroupRow.collecting == literal_column("1"),
        )
        group = s.scalars(select(IncidentGroupRow).where(where).limit(1)).first()
        if group is not None and group.last_ms < ts - self.group_window_ms:
            # a long-running group stops collecting; its open incidents stay in it
            group.collecting = 0
            s.flush()
            group = None
        if group is None:
            group = IncidentGroupRow(
                category=row.category,
                scope_key=key,
                site=row.site,
                grid=row.grid,
                severity=row.severity,
                state=OPEN,
                collecting=1,
                title=row.title,
                opened_ms=ts,
                last_ms=ts,
            )
            s.add(group)
            s.flush()  # IntegrityError when another writer opened the scope's group first: retry joins it
        else:
            group.last_ms = max(group.last_ms, ts)
            group.state, group.closed_ms = OPEN, None
            if SEVERITY_RANK.get(row.severity, 0) > SEVERITY_RANK.get(group.severity, 0):
                group.severity = row.severity
            members = self._member_count(s, group.id) + (0 if row.group_id == group.id else 1)
            where_text = key.split(":", 1)[1]
            group.title = f"{members} incidents: {row.category.replace('_', ' ')} in {where_text}"
        row.group_id = group.id
        s.flush()
        return self._group_data(s, group), True

    def _member_count(self, s: Session, group_id: int) -> int:
        return int(s.scalar(select(func.count(IncidentRow.id)).where(IncidentRow.group_id == group_id)) or 0)

    def _close(
        self, s: Session, rule_id: str, subject: str, ts: int, *, reason: str, c: Candidate | None
    ) -> IncidentChange | None:
        stmt = (
            update(IncidentRow)
            .where(self._key(rule_id, subject))
            .values(state=CLOSED, closed_ms=ts, updated_ms=ts, close_reason=reason)
        )
        if s.execute(stmt, execution_options=_NO_SYNC).rowcount == 0:  # type: ignore[attr-defined]
            return None
        row = s.scalars(
            select(IncidentRow)
            .where(IncidentRow.rule_id == rule_id, IncidentRow.subject == subject, IncidentRow.closed_ms == ts)
            .order_by(IncidentRow.id.desc())
            .limit(1),
            execution_options=_FRESH,
        ).one()
        group_data, changed = self._settle_group(s, row.group_id, ts)
        return IncidentChange("closed", incident_public(row), group_data, changed, c)

    def _settle_group(self, s: Session, group_id: int | None, ts: int) -> tuple[dict[str, Any] | None, bool]:
        """Mark a group's incidents-all-closed time; returns its data and whether that changed."""
        if group_id is None:
            return None, False
        group = s.get(IncidentGroupRow, group_id)
        if group is None:
            return None, False
        still_open = s.scalars(
            select(IncidentRow.id).where(IncidentRow.group_id == group_id, IncidentRow.state == OPEN).limit(1)
        ).first()
        changed = still_open is None and group.state == OPEN
        if changed:
            group.state, group.closed_ms = CLOSED, ts
        return self._group_data(s, group), changed

    def _group_data(self, s: Session, group: IncidentGroupRow) -> dict[str, Any]:
        members = s.execute(select(*MEMBER_COLUMNS).where(IncidentRow.group_id == group.id)).all()
        return group_public(group, members)

    # -------------------------------------------------------- operator actions

    def acknowledge(self, incident_id: int, by: str) -> dict[str, Any]:
        """Record that an operator has seen the incident."""

        def act(s: Session) -> IncidentChange:
            now = self._now_ms()
            stmt = update(IncidentRow).where(IncidentRow.id == incident_id).values(acked_by=by, acked_ms=now)
            if s.execute(stmt, execution_options=_NO_SYNC).rowcount == 0:  # type: ignore[attr-defined]
                raise IncidentNotFoundError("incident", incident_id)
            return IncidentChange(
                "acknowledged", incident_public(s.get_one(IncidentRow, incident_id, populate_existing=True))
            )

        change = self._retry(act)
        assert change is not None
        self._publish(change)
        return change.incident

    def close(self, incident_id: int, by: str, reason: str = "resolved") -> dict[str, Any]:
        """Close an open incident by hand; the engine forgets its key so the next raise opens afresh."""

        def act(s: Session) -> IncidentChange | None:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise IncidentNotFoundError("incident", incident_id)
            return self._close(s, row.rule_id, row.subject, self._now_ms(), reason=f"{reason} by {by}"[:64], c=None)

        change = self._retry(act)
        if change is None:
            return self.get_incident(incident_id)
        self._publish(change)
        for hook in self.on_manual_close:
            hook(change.incident["rule_id"], change.incident["subject"])
        return change.incident

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def get_incident(self, incident_id: int) -> dict[str, Any]:
        """One incident as public data."""
        with self._sessions() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise IncidentNotFoundError("incident", incident_id)
            return incident_public(row)

    # -------------------------------------------------------------- publishing

    def _publish(self, change: IncidentChange) -> None:
        try:
            if self._bus is not None:
                self._bus.publish("incident", {"change": change.kind, **change.incident})
                if change.group is not None and change.group_changed:
                    self._bus.publish("incident_group", change.group)
            cases = None if self._services is None else self._services.cases
            if cases is not None and change.group is not None and change.group_changed:
                times = {
                    "alarm_raised_ms": change.incident["raised_ms"],
                    "alarm_received_ms": change.incident["received_ms"],
                }
                cases.on_incident_group(change.group | times)
            writer = None if self._services is None else self._services.writer
            if writer is not None and change.kind != "acknowledged":
                writer.submit([incident_point(change.incident)])
        except Exception:
            logger.exception("publishing incident %s change %s failed", change.incident.get("id"), change.kind)


def incident_point(incident: Mapping[str, Any]) -> SeriesPoint:
    """An incident as a series point (measurement ``incident``) for Grafana annotations."""
    tags = {"site": incident["site"], "category": incident["category"], "severity": incident["severity"]}
    if incident.get("grid"):
        tags["grid"] = incident["grid"]
    tags["device"] = incident.get("device_id") or incident["subject"]
    return SeriesPoint(
        measurement="incident",
        tags=tags,
        fields={"state_code": STATE_CODES.get(incident["state"], 0), "repeats": int(incident["repeats"])},
        ts_ms=int(incident["updated_ms"]),
    )
