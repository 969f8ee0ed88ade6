"""Stage clocks and timestamps that follow each action (the SLA bookkeeping on a case row)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from hub.cases.models import CaseRow
from hub.cases.records import case_calendar, sla_state
from hub.cases.sla import SlaPolicy

#: The stage whose clock starts after each action (None stops the clock); absent = unchanged.
NEXT_STAGE: Final[dict[str, str | None]] = {
    "dispatch": "accept",
    "accept": "handle",
    "return": "dispatch",
    "feedback": None,
    "close": None,
    "cancel": None,
    "merge": None,
}


def enter_stage(row: CaseRow, policy: SlaPolicy, stage: str | None, now_ms: int) -> None:
    """Stop the running stage clock (noting a breach) and start ``stage``'s on the calendar its rule names."""
    if sla_state(row, policy, now_ms)[0] == "red":
        row.breached = True
    row.stage, row.stage_started_ms, row.paused_since_ms, row.stage_paused_s = stage, None, None, 0.0
    row.stage_limit_s, row.sla_level = None, "green"
    if stage is not None:
        found = policy.stage_limit(row.category, row.severity, stage)
        row.stage_started_ms = now_ms
        row.stage_limit_s = found.limit.total_seconds()
        row.sla_calendar = found.calendar_name


def follow_action(
    row: CaseRow,
    policy: SlaPolicy,
    *,
    action: str,
    params: Mapping[str, Any],
    was_paused: bool,
    now: int,
) -> None:
    """Timestamps, stage clocks and pauses after ``action`` moved ``row`` (``row.paused`` is already new)."""
    if action == "dispatch" and row.dispatched_ms is None:
        row.dispatched_ms = now
    elif action == "accept" and row.accepted_ms is None:
        row.accepted_ms = now
    elif action == "feedback":
        row.feedback_ms = now
    elif action == "close":
        row.closed_ms = now
    if action in NEXT_STAGE:
        enter_stage(row, policy, NEXT_STAGE[action], now)
    elif action == "verify" and params.get("result") == "fail":
        enter_stage(row, policy, "handle", now)  # reopened: the handling clock starts again
    if row.paused and not was_paused:
        row.paused_since_ms = now
    elif was_paused and not row.paused and row.paused_since_ms is not None:
        _name, cal = case_calendar(row, policy)
        gap = cal.between(cal.to_local(row.paused_since_ms / 1000), cal.to_local(now / 1000))
        row.stage_paused_s = (row.stage_paused_s or 0.0) + max(gap, timedelta(0)).total_seconds()
        row.paused_since_ms = None
