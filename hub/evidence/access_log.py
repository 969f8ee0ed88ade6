"""The access log: every request for evidence (allowed or refused) and every device command and ack is recorded.

Each row says who (person id and roles), when, which snapshot (device and event),
what was asked (``image`` or ``meta``) and the outcome (``allowed``, ``denied``,
``missing``, or ``unauthenticated`` for a request with no, a bad or a revoked token,
recorded as person ``anonymous``). Device commands add rows with actions ``command:<op>``
(outcome ``queued``, ``denied``, ``timed_out``, ``expired``) and ``ack:<op>`` (person = the
device, outcome = the ack's result), the command id in ``event_id``.
``GET /api/v1/access-audit`` lists it for admins. Records are kept ``access_log_retention_days``
(hub setting) and then purged by the snapshot plug-in's retention sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from hub.evidence.models import AccessAuditRow
from hub.security import authz
from hub.security.auth import PrincipalDep, require
from hub.security.authz import Principal

logger = logging.getLogger(__name__)

ALLOWED: Final = "allowed"
DENIED: Final = "denied"
MISSING: Final = "missing"
UNAUTHENTICATED: Final = "unauthenticated"
#: Person id recorded for a request refused before anyone was known.
ANONYMOUS: Final = "anonymous"
DEFAULT_RETENTION_DAYS: Final = 365.0


def _public(row: AccessAuditRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "ts_ms": row.ts_ms,
        "person_id": row.person_id,
        "roles": row.roles.split(",") if row.roles else [],
        "action": row.action,
        "device_id": row.device_id,
        "event_id": row.event_id,
        "outcome": row.outcome,
        "client": row.client,
    }


class AccessLog:
    """Append-only evidence access records in the state DB (table ``access_audit``)."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        clock: Callable[[], float] = time.time,
        retention_days: float = DEFAULT_RETENTION_DAYS,
    ) -> None:
        # until the table has its alembic revision it is created here when missing (idempotent)
        AccessAuditRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
        self.sessions = sessions
        self.clock = clock
        self.retention_ms = int(retention_days * 86_400_000)

    def record(
        self, principal: Principal, action: str, device_id: str, event_id: str, *, outcome: str, client: str = ""
    ) -> None:
        """Append one access record (committed before the evidence is sent)."""
        roles = ",".join(sorted(principal.roles))
        self.record_event(principal.id, roles, action, device_id, event_id, outcome=outcome, client=client)

    def record_event(
        self,
        person_id: str,
        roles: str,
        action: str,
        device_id: str,
        event_id: str,
        *,
        outcome: str,
        client: str = "",
    ) -> None:
        """Append one record of an actor that may not be a person (a device's ack, the hub's own sweep)."""
        with self.sessions() as s, s.begin():
            s.add(
                AccessAuditRow(
                    ts_ms=int(self.clock() * 1000),
                    person_id=person_id[:64],
                    roles=roles[:200],
                    action=action[:32],
                    device_id=device_id[:64],
                    event_id=event_id[:64],
                    outcome=outcome[:16],
                    client=client[:64],
                )
            )
        logger.info("audit %s %s/%s by %s: %s", action, device_id, event_id, person_id, outcome)

    def record_unauthenticated(self, action: str, device_id: str, event_id: str, *, reason: str, client: str) -> None:
        """Append a request refused before anyone was known (no, bad or revoked token)."""
        with self.sessions() as s, s.begin():
            s.add(
                AccessAuditRow(
                    ts_ms=int(self.clock() * 1000),
                    person_id=ANONYMOUS,
                    roles="",
                    action=action,
                    device_id=device_id[:64],
                    event_id=event_id[:64],
                    outcome=UNAUTHENTICATED,
                    client=client[:64],
                )
            )
        logger.warning("evidence %s %s/%s refused from %s: %s", action, device_id[:64], event_id[:64], client, reason)

    def purge(self, now_ms: int | None = None) -> int:
        """Delete records older than the retention period; return how many."""
        now = int(self.clock() * 1000) if now_ms is None else now_ms
        with self.sessions() as s, s.begin():
            result = s.execute(
                delete(AccessAuditRow)
                .where(AccessAuditRow.ts_ms < now - self.retention_ms)
                .execution_options(synchronize_session=False)
            )
        removed = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if removed:
            days = self.retention_ms / 86_400_000
            logger.info("evidence access log: removed %d records older than %.1f days", removed, days)
        return removed

    def list(
        self, *, person: str | None = None, device: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Records newest first, optionally of one person or device."""
        stmt = select(AccessAuditRow).order_by(AccessAuditRow.id.desc()).limit(limit).offset(offset)
        if person:
            stmt = stmt.where(AccessAuditRow.person_id == person)
        if device:
            stmt = stmt.where(AccessAuditRow.device_id == device)
        with self.sessions() as s:
            return [_public(r) for r in s.scalars(stmt)]


def get_access_log(request: Request) -> AccessLog:
    """The access log on the hub context (installed with the snapshot store)."""
    log = request.app.state.ctx.services.access_log
    if not isinstance(log, AccessLog):
        raise HTTPException(status_code=503, detail="the evidence access log is not running")
    return log


AccessLogDep = Annotated[AccessLog, Depends(get_access_log)]
router = APIRouter(prefix="/api/v1", tags=["access-audit"])


@router.get("/access-audit")
def list_access(
    *,
    log: AccessLogDep,
    principal: PrincipalDep,
    person: str | None = None,
    device: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Who accessed which evidence and when, newest first (admins)."""
    require(principal, authz.may_manage_directory(principal), "read the evidence access log")
    return log.list(person=person, device=device, limit=limit, offset=offset)
