"""Mapping between case rows and the pure cores: machine facts, SLA clocks, JSON views."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.cases.audit import AuditEntry
from hub.cases.calendar import WorkingCalendar
from hub.cases.escalation import ESCALATION_LEVELS
from hub.cases.machine import CaseFacts, State, allowed_actions
from hub.cases.models import CaseEventRow, CaseRow
from hub.cases.plans import missing_for_close
from hub.cases.sla import STAGES, SlaPolicy, StageClock, due, elapsed, level


def facts_of(row: CaseRow) -> CaseFacts:
    """The machine's view of a row."""
    return CaseFacts(
        state=State(row.state),
        assignees=frozenset(row.assignees or ()),
        handler_id=row.handler_id,
        rework_count=row.rework_count,
        paused=row.paused,
        merged_into=row.merged_into,
        satisfaction=row.satisfaction,
        verified_by=row.verified_by,
        close_blockers=missing_for_close(row.plan_steps),
    )


def clock_of(row: CaseRow, cal: WorkingCalendar) -> StageClock | None:
    """The running stage clock of a row, if a stage is timed."""
    if row.stage is None or row.stage_started_ms is None or row.stage_limit_s is None:
        return None
    return StageClock(
        stage=row.stage,
        started=cal.to_local(row.stage_started_ms / 1000),
        limit=timedelta(seconds=row.stage_limit_s),
        paused=timedelta(seconds=row.stage_paused_s or 0.0),
        paused_since=cal.to_local(row.paused_since_ms / 1000) if row.paused_since_ms is not None else None,
    )


def case_calendar(row: CaseRow, policy: SlaPolicy) -> tuple[str, WorkingCalendar]:
    """The named calendar the row's stage clock runs on (the default one for rows from before calendars)."""
    return policy.named(row.sla_calendar)


def sla_state(row: CaseRow, policy: SlaPolicy, now_ms: int) -> tuple[str, int | None, timedelta, timedelta]:
    """(level, due ms, spent, limit) of the running stage on the case's calendar; ('none', None, 0, 0) when untimed."""
    _name, cal = case_calendar(row, policy)
    clock = clock_of(row, cal)
    if clock is None:
        return "none", None, timedelta(0), timedelta(0)
    now = cal.to_local(now_ms / 1000)
    due_ms = round(cal.to_epoch(due(cal, clock, now)) * 1000)
    return level(cal, clock, now), due_ms, elapsed(cal, clock, now), clock.limit


def projected_done_ms(row: CaseRow, policy: SlaPolicy, now_ms: int) -> int | None:
    """When the case should be handled: the current stage's due time plus the later stages' limits.

    Each later stage is added on its own calendar (a fire's handling may run around the clock
    while a routine case's waits for office hours).
    """
    _lvl, due_ms, _spent, _limit = sla_state(row, policy, now_ms)
    if due_ms is None or row.stage is None:
        return None
    done = due_ms / 1000
    for stage in STAGES[STAGES.index(row.stage) + 1 :]:
        nxt = policy.stage_limit(row.category, row.severity, stage)
        done = nxt.calendar.to_epoch(nxt.calendar.add(nxt.calendar.to_local(done), nxt.limit))
    return round(done * 1000)


def entry_of(row: CaseEventRow) -> AuditEntry:
    """The pure audit entry of a stored row."""
    return AuditEntry(
        case_id=row.case_id,
        seq=row.seq,
        ts_ms=row.ts_ms,
        actor=row.actor,
        action=row.action,
        from_state=row.from_state,
        to_state=row.to_state,
        note=row.note,
        evidence=tuple(row.evidence or ()),
        data=dict(row.data or {}),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def event_public(row: CaseEventRow) -> dict[str, Any]:
    """JSON view of an audit row."""
    return {
        "seq": row.seq,
        "ts_ms": row.ts_ms,
        "actor": row.actor,
        "action": row.action,
        "from": row.from_state,
        "to": row.to_state,
        "note": row.note,
        "evidence": list(row.evidence or ()),
        "data": row.data or {},
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def case_public(row: CaseRow, policy: SlaPolicy, now_ms: int) -> dict[str, Any]:
    """JSON view of a case, with its live SLA level and due time and the calendar they run on."""
    sla_level, due_ms, spent, limit = sla_state(row, policy, now_ms)
    return {
        "id": row.id,
        "version": row.version,
        "etag": f'"{row.version}"',
        "state": row.state,
        "source": row.source,
        "group_id": row.group_id,
        "category": row.category,
        "severity": row.severity,
        "grid": row.grid_code,
        "title": row.title,
        "description": row.description,
        "lat": row.lat,
        "lon": row.lon,
        "address": row.address,
        "reporter": row.reporter_id,
        "assignees": list(row.assignees or ()),
        "worker": row.worker_id,
        "force": row.force_id,
        "handler": row.handler_id,
        "verified_by": row.verified_by,
        "fallback": row.fallback,
        "rework_count": row.rework_count,
        "paused": row.paused,
        "satisfaction": row.satisfaction,
        "merged_into": row.merged_into,
        "escalation_level": row.escalation_level,
        "escalated_to": ESCALATION_LEVELS[row.escalation_level],
        "stage": row.stage,
        "calendar": case_calendar(row, policy)[0],
        "sla": {
            "level": sla_level,
            "due_ms": due_ms,
            "spent_s": spent.total_seconds(),
            "limit_s": limit.total_seconds(),
        },
        "breached": row.breached,
        "incident_ids": list(row.incident_ids or ()),
        "alarm_raised_ms": row.alarm_raised_ms,
        "alarm_received_ms": row.alarm_received_ms,
        "created_ms": row.created_ms,
        "updated_ms": row.updated_ms,
        "dispatched_ms": row.dispatched_ms,
        "accepted_ms": row.accepted_ms,
        "feedback_ms": row.feedback_ms,
        "closed_ms": row.closed_ms,
        "allowed_actions": allowed_actions(facts_of(row)),
        "audit_count": row.audit_count,
        "plan": row.plan_id,
        "plan_steps": [dict(step) for step in row.plan_steps or ()],
        "texts": dict(row.texts or {}),
    }


def scope_of(row: CaseRow) -> dict[str, Any]:
    """The fields of a case that :mod:`hub.security.authz` decides visibility on (as in the case JSON)."""
    return {
        "grid": row.grid_code,
        "assignees": list(row.assignees or ()),
        "worker": row.worker_id,
        "handler": row.handler_id,
        "force": row.force_id,
        "reporter": row.reporter_id,
    }
