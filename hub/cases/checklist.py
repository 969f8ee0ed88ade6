"""Marking a case's emergency-plan steps done: the I/O shell around :mod:`hub.cases.plans`.

Each step done is one transaction that updates the case's checklist (version-checked
like every transition) and appends a ``plan_step`` audit entry naming the step, its
phase and who did it, so the trail shows who did each step when.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from hub.cases.errors import CaseServiceError, ForbiddenError, NotFoundError, UnauthenticatedError
from hub.cases.plans import mark_done, may_do
from hub.cases.records import case_public, event_public

if TYPE_CHECKING:
    from hub.cases.service import CaseService

logger = logging.getLogger(__name__)
#: Audit action of a plan step done.
PLAN_STEP: Final = "plan_step"
MAX_ATTEMPTS: Final = 60


def complete_step(
    svc: CaseService,
    case_id: int,
    step: str,
    actor_id: str,
    *,
    note: str = "",
    actor_roles: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Mark ``step`` of the case's plan done by ``actor_id``; returns ``{"case", "event"}``."""
    person = svc.directory.model().people.get(actor_id)
    if person is not None:
        roles, force = frozenset(person.roles), svc.directory.model().forces.get(person.force_id or "")
        force_kind = force.kind if force else None
    elif actor_roles is not None:
        roles, force_kind = actor_roles, None  # the built-in administrator
    else:
        raise UnauthenticatedError("unknown_actor", f"unknown person {actor_id!r}")
    for _ in range(MAX_ATTEMPTS):
        try:
            return _complete_once(svc, case_id, step, actor_id, note=note, roles=roles, force_kind=force_kind)
        except (StaleDataError, IntegrityError, OperationalError) as exc:
            logger.debug("case %s plan step %s lost a race (%s); retrying", case_id, step, type(exc).__name__)
    raise CaseServiceError("busy", f"case {case_id}: too much contention, try again")


def _complete_once(
    svc: CaseService,
    case_id: int,
    step: str,
    actor_id: str,
    *,
    note: str,
    roles: frozenset[str],
    force_kind: str | None,
) -> dict[str, Any]:
    now = svc.now_ms()
    with svc.sessions() as s, s.begin():
        row = svc.row(s, case_id, lock=True)
        if not row.plan_steps:
            raise NotFoundError("no_plan", f"case {case_id} follows no emergency plan")
        found = next((st for st in row.plan_steps if st.get("name") == step), None)
        if found is not None and not may_do(found, roles, force_kind):
            who = found.get("role") or f"the {found.get('force')} force"
            raise ForbiddenError("not_step_owner", f"plan step {step!r} is for {who}")
        row.plan_steps = mark_done(row.plan_steps, step, actor_id, now)
        phase = next(st["phase"] for st in row.plan_steps if st["name"] == step)
        data = {"plan": row.plan_id, "step": step, "phase": phase}
        event = svc.append_event(s, row, actor_id, PLAN_STEP, row.state, note=note, data=data, now_ms=now)
        s.flush()
        body = {"case": case_public(row, svc.policy, now), "event": event_public(event)}
    svc.publish(PLAN_STEP, body["case"], actor=actor_id)
    return body
