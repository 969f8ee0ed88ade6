"""The case service: transactional, idempotent, version-checked transitions with audit and outbox.

Each change runs in one transaction that updates the case row (conditional on its
version: the ORM's ``version_id_col`` adds ``AND version = :old``; PostgreSQL also
takes ``SELECT ... FOR UPDATE``), appends the hash-chained audit entry, writes the
webhook outbox rows and, with an Idempotency-Key, the remembered result. A lost
race is retried from a fresh read, so 20 concurrent ``close`` calls make exactly one
transition and 19 clean 409s.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from hub.bus import EventBus
from hub.cases.audit import AuditEntry, canonical_json, seal, verify_chain
from hub.cases.calendar import WorkingCalendar
from hub.cases.directory import Directory
from hub.cases.errors import (
    CaseServiceError,
    ForbiddenError,
    IdempotencyMismatchError,
    InvalidInputError,
    NotFoundError,
    StaleVersionError,
    UnauthenticatedError,
)
from hub.cases.grid import Person
from hub.cases.intake import create_case, incident_group
from hub.cases.machine import ACTION_ROLES, Action, Command, apply
from hub.cases.models import CaseEventRow, CaseRow, IdempotencyRow, OutboxRow
from hub.cases.plans import PlanBook
from hub.cases.records import case_public, entry_of, event_public, facts_of
from hub.cases.routing import RoutingError, route
from hub.cases.sla import SlaPolicy
from hub.cases.stages import follow_action
from hub.cases.sweeper import sweep
from hub.series.base import PointWriter

logger = logging.getLogger(__name__)

SYSTEM: Final = "system"
MAX_ATTEMPTS: Final = 60
#: Audit ``data`` key of a note written for residents (shown by Open311; ``note`` is internal).
PUBLIC_NOTE: Final = "public_note"
#: Audit ``data`` key naming the roles of an actor who is not a directory person (the built-in admin).
ACTOR_ROLES: Final = "actor_roles"


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """An external platform receiving case events (HMAC-SHA256 signed with ``secret``)."""

    name: str
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """HTTP status and body of a transition; ``replayed`` when served from the idempotency store."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


class _Retry(Exception):
    """Internal: the transaction lost a race; read again."""


class CasePeers(Protocol):
    """What the case service takes from the other parts (the hub's ``ctx.services``): the series
    writer, where evaluation figures also go."""

    @property
    def writer(self) -> PointWriter | None: ...


class CaseService:
    """Creates cases and moves them through the machine; the API, Open311 and incidents call this."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        directory: Directory,
        policy: SlaPolicy,
        *,
        bus: EventBus | None = None,
        clock: Callable[[], float] = time.time,
        targets: Sequence[WebhookTarget] = (),
        services: CasePeers | None = None,
        plans: PlanBook | None = None,
    ) -> None:
        self.sessions = sessions
        self.directory = directory
        self.policy = policy
        self.plans = plans if plans is not None else PlanBook()
        self.bus = bus
        self.clock = clock
        self.targets = list(targets)
        self.services = services

    @property
    def calendar(self) -> WorkingCalendar:
        """The default calendar; its zone is the local time of evaluation periods and Open311 times.

        Stage clocks run on each case's own calendar (:func:`hub.cases.records.case_calendar`).
        """
        return self.policy.named(None)[1]

    def now_ms(self) -> int:
        """The service clock in ms."""
        return int(self.clock() * 1000)

    # ---------------------------------------------------------------- reads
    def row(self, s: Session, case_id: int, *, lock: bool = False) -> CaseRow:
        """The case row (locked for update with ``lock``), or NotFoundError."""
        stmt = select(CaseRow).where(CaseRow.id == case_id)
        row = s.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
        if row is None:
            raise NotFoundError("case_not_found", f"no case {case_id}")
        return row

    def get(self, case_id: int) -> dict[str, Any]:
        """One case as JSON."""
        with self.sessions() as s:
            return case_public(self.row(s, case_id), self.policy, self.now_ms())

    def list_cases(
        self, *, state: str | None = None, grid: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Cases, newest first, optionally by state and grid (a code prefix)."""
        stmt = select(CaseRow).order_by(CaseRow.id.desc()).limit(limit).offset(offset)
        if state:
            stmt = stmt.where(CaseRow.state == state)
        if grid:
            stmt = stmt.where(CaseRow.grid_code.startswith(grid))
        now = self.now_ms()
        with self.sessions() as s:
            return [case_public(r, self.policy, now) for r in s.scalars(stmt)]

    def audit(self, case_id: int) -> list[dict[str, Any]]:
        """The audit trail of a case in order."""
        with self.sessions() as s:
            self.row(s, case_id)
            stmt = select(CaseEventRow).where(CaseEventRow.case_id == case_id).order_by(CaseEventRow.seq)
            return [event_public(r) for r in s.scalars(stmt)]

    def verify(self, case_id: int) -> dict[str, Any]:
        """Verify the hash chain against the head and count recorded on the case."""
        with self.sessions() as s:
            row = self.row(s, case_id)
            stmt = (
                select(CaseEventRow).where(CaseEventRow.case_id == case_id).order_by(CaseEventRow.seq, CaseEventRow.id)
            )
            report = verify_chain([entry_of(r) for r in s.scalars(stmt)], head=row.audit_head, count=row.audit_count)
        return {
            "case_id": case_id,
            "ok": report.ok,
            "count": report.count,
            "head": report.head,
            "bad_seq": report.bad_seq,
            "reason": report.reason,
        }

    # --------------------------------------------------------------- helpers
    def person(self, person_id: str) -> Person:
        """The acting person; raise :class:`UnauthenticatedError` for an unknown id."""
        person = self.directory.model().people.get(person_id)
        if person is None:
            raise UnauthenticatedError("unknown_actor", f"unknown person {person_id!r}")
        return person

    def append_event(
        self,
        s: Session,
        row: CaseRow,
        actor: str,
        action: str,
        from_state: str,
        *,
        note: str = "",
        evidence: Iterable[str] = (),
        data: Mapping[str, Any] | None = None,
        now_ms: int,
    ) -> CaseEventRow:
        """Append the next audit entry (and its outbox rows) and move the case's head."""
        entry = seal(
            AuditEntry(
                row.id,
                row.audit_count + 1,
                now_ms,
                actor,
                action,
                from_state,
                row.state,
                note,
                tuple(evidence),
                dict(data or {}),
                row.audit_head,
            )
        )
        event = CaseEventRow(
            case_id=row.id,
            seq=entry.seq,
            ts_ms=now_ms,
            actor=actor,
            action=action,
            from_state=from_state,
            to_state=row.state,
            note=note,
            evidence=list(entry.evidence),
            data=entry.data,
            prev_hash=entry.prev_hash,
            hash=entry.hash,
        )
        s.add(event)
        row.audit_head, row.audit_count, row.updated_ms = entry.hash, entry.seq, now_ms
        if self.targets:
            s.flush()
            view = case_public(row, self.policy, now_ms)
            for unsettled in ("version", "etag"):  # the row may change again before commit: use seq
                view.pop(unsettled)
            for target in self.targets:
                key = f"case-{row.id}-{entry.seq}-{target.name}"
                payload = canonical_json({"delivery_key": key, "event": event_public(event), "case": view})
                s.add(
                    OutboxRow(
                        delivery_key=key,
                        target=target.name,
                        case_id=row.id,
                        event_seq=entry.seq,
                        payload=payload,
                        attempts=0,
                        next_attempt_ms=0,
                        last_error="",
                    )
                )
        return event

    def publish(self, event: str, view: Mapping[str, Any], **extra: Any) -> None:
        """Push a case change to live subscribers (bus kind "case")."""
        if self.bus is not None:
            self.bus.publish("case", {"event": event, "case": dict(view), **extra})

    # ------------------------------------------------------------- creation
    def create(self, **fields: Any) -> dict[str, Any]:
        """Report a new case; see :func:`hub.cases.intake.create_case` for the fields."""
        return create_case(self, **fields)

    def on_incident_group(self, data: Mapping[str, Any]) -> int | None:
        """One case per incident group, auto-dispatched by routing; later incidents attach to it."""
        return incident_group(self, data)

    def sweep(self) -> list[dict[str, Any]]:
        """Refresh SLA levels and escalate overdue cases; returns the escalations made."""
        return sweep(self)

    # ------------------------------------------------------------ transitions
    def transition(
        self,
        case_id: int,
        action: str,
        actor_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        note: str = "",
        evidence: Sequence[str] = (),
        idempotency_key: str | None = None,
        if_match: int | None = None,
        public_note: str = "",
        actor_roles: frozenset[str] | None = None,
    ) -> TransitionResult:
        """Apply ``action`` by ``actor_id``; idempotent per key, version-checked by ``if_match``.

        ``public_note`` is a note written for residents (Open311 shows it; ``note`` stays
        internal). ``actor_roles`` are the signed-in principal's roles: they let an actor
        outside the directory (the built-in administrator) act, recorded with those roles;
        without them the directory decides.
        """
        params = dict(params or {})
        request_hash = hashlib.sha256(
            canonical_json(
                {
                    "case": case_id,
                    "action": action,
                    "actor": actor_id,
                    "params": params,
                    "note": note,
                    "public_note": public_note,
                    "evidence": list(evidence),
                }
            ).encode()
        ).hexdigest()
        for _ in range(MAX_ATTEMPTS):
            if idempotency_key:
                stored = self._replay(idempotency_key, request_hash)
                if stored is not None:
                    return stored
            try:
                result = self._transition_once(
                    case_id=case_id,
                    action=action,
                    actor_id=actor_id,
                    params=params,
                    note=note,
                    evidence=evidence,
                    idempotency_key=idempotency_key,
                    request_hash=request_hash,
                    if_match=if_match,
                    public_note=public_note,
                    actor_roles=actor_roles,
                )
            except (StaleDataError, IntegrityError, OperationalError) as exc:
                logger.debug("case %s %s lost a race (%s); retrying", case_id, action, type(exc).__name__)
                continue
            self.publish(action, result.body["case"], actor=actor_id)
            return result
        raise CaseServiceError("busy", f"case {case_id}: too much contention, try again")

    def _replay(self, key: str, request_hash: str) -> TransitionResult | None:
        with self.sessions() as s:
            rec = s.get(IdempotencyRow, key)
            if rec is None:
                return None
            if rec.request_hash != request_hash:
                raise IdempotencyMismatchError("idempotency_key_reused", f"key {key!r} was used for another request")
            return TransitionResult(rec.status_code, rec.response, replayed=True)

    def _transition_once(
        self,
        *,
        case_id: int,
        action: str,
        actor_id: str,
        params: dict[str, Any],
        note: str,
        evidence: Sequence[str],
        idempotency_key: str | None,
        request_hash: str,
        if_match: int | None,
        public_note: str = "",
        actor_roles: frozenset[str] | None = None,
    ) -> TransitionResult:
        now = self.now_ms()
        with self.sessions() as s, s.begin():
            row = self.row(s, case_id, lock=True)
            if if_match is not None and row.version != if_match:
                raise StaleVersionError(row.version, if_match)
            outside = self._check_role(actor_id, action, actor_roles)
            if action == Action.DISPATCH.value:
                params = self._dispatch_params(row, params)
            if action == Action.MERGE.value:
                self._check_merge_target(s, row, params)
            before = facts_of(row)
            after = apply(before, Command(action, actor_id, params))
            from_state = row.state
            row.state, row.assignees, row.handler_id = after.state.value, sorted(after.assignees), after.handler_id
            row.rework_count, row.satisfaction = after.rework_count, after.satisfaction
            row.merged_into, row.verified_by = after.merged_into, after.verified_by
            row.paused = after.paused
            follow_action(row, self.policy, action=action, params=params, was_paused=before.paused, now=now)
            data = {k: v for k, v in params.items() if k != "assignees"} | (
                {"assignees": row.assignees} if action == "dispatch" else {}
            )
            if public_note:
                data[PUBLIC_NOTE] = public_note
            if outside is not None:
                data[ACTOR_ROLES] = sorted(outside)  # not a directory person: the trail says in which capacity
            event = self.append_event(
                s, row, actor_id, action, from_state, note=note, evidence=evidence, data=data, now_ms=now
            )
            s.flush()
            body = {"case": case_public(row, self.policy, now), "event": event_public(event)}
            if idempotency_key:
                s.add(
                    IdempotencyRow(
                        key=idempotency_key, request_hash=request_hash, status_code=200, response=body, created_ms=now
                    )
                )
                s.flush()
        return TransitionResult(200, body)

    def _check_role(self, actor_id: str, action: str, actor_roles: frozenset[str] | None) -> frozenset[str] | None:
        """Refuse an actor whose roles do not allow ``action``; return the roles of an actor outside the directory."""
        if actor_id == SYSTEM:
            return None
        person = self.directory.model().people.get(actor_id)
        if person is not None:
            roles, outside = frozenset(person.roles), None
        elif actor_roles is not None:
            roles = outside = frozenset(actor_roles)
        else:
            raise UnauthenticatedError("unknown_actor", f"unknown person {actor_id!r}")
        try:
            allowed = ACTION_ROLES[Action(action)]
        except ValueError:
            return outside  # the machine refuses unknown actions with a 409 and a reason
        if not roles.intersection({*allowed, "admin"}):
            raise ForbiddenError("role_not_allowed", f"{actor_id} ({', '.join(sorted(roles))}) may not {action}")
        return outside

    def _dispatch_params(self, row: CaseRow, params: dict[str, Any]) -> dict[str, Any]:
        model = self.directory.model()
        if params.get("assignees"):
            unknown = [p for p in params["assignees"] if p not in model.people]
            if unknown:
                raise InvalidInputError("unknown_assignee", f"unknown people {unknown}")
            return params
        if row.grid_code is None:
            return params  # the machine answers assignee_required
        try:
            found = route(model, row.grid_code, row.category)
        except RoutingError as exc:
            raise InvalidInputError("unknown_grid", str(exc)) from exc
        row.worker_id, row.force_id, row.fallback = found.worker_id, found.force_id, found.fallback
        return {**params, "assignees": found.assignees, "force": found.force_id, "fallback": found.fallback}

    def _check_merge_target(self, s: Session, row: CaseRow, params: Mapping[str, Any]) -> None:
        target = params.get("into")
        if isinstance(target, int) and (target == row.id or s.get(CaseRow, target) is None):
            raise InvalidInputError("bad_merge_target", f"cannot merge case {row.id} into {target}")
