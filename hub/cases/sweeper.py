"""The SLA sweep: refresh warning levels and escalate overdue cases one level at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from hub.cases.core import CaseCore
from hub.cases.escalation import due_level, step
from hub.cases.models import CaseRow
from hub.cases.records import case_public, sla_state
from hub.cases.texts import escalation_note, note_texts

logger = logging.getLogger(__name__)
DEFAULT_SWEEP_S = 30.0


def sweep(svc: CaseCore) -> list[dict[str, Any]]:
    """Check every timed case once; returns the escalations made (each with who was notified)."""
    now = svc.now_ms()
    with svc.sessions() as s:
        ids = list(s.scalars(select(CaseRow.id).where(CaseRow.stage.is_not(None)).order_by(CaseRow.id)))
    out: list[dict[str, Any]] = []
    for case_id in ids:
        try:
            result = _sweep_one(svc, case_id, now)
        except (StaleDataError, IntegrityError, OperationalError):
            logger.debug("case %s changed during the sweep; next sweep will see it", case_id)
            continue
        if result is not None:
            out.append(result)
    return out


def _sweep_one(svc: CaseCore, case_id: int, now: int) -> dict[str, Any] | None:
    with svc.sessions() as s, s.begin():
        row = s.execute(select(CaseRow).where(CaseRow.id == case_id).with_for_update()).scalar_one_or_none()
        if row is None or row.stage is None:
            return None
        level, due_ms, spent, limit = sla_state(row, svc.policy, now)
        owed = due_level(spent, limit)
        escalate = owed > row.escalation_level
        if level == row.sla_level and not escalate:
            return None
        row.sla_level = level
        row.breached = row.breached or level == "red"
        result: dict[str, Any] | None = None
        if escalate:
            model = svc.directory.model()
            target = step(model, row.grid_code or model.city_code, owed, row.category)
            row.escalation_level = owed
            result = {
                "case_id": row.id,
                "level": target.level,
                "level_name": target.level_name,
                "area": target.area_code,
                "notify": list(target.notify),
                "stage": row.stage,
                "due_ms": due_ms,
            }
            note = f"{row.stage} overdue: escalated to the {target.level_name} ({target.area_code})"
            data = result | note_texts(escalation_note(row.stage, target.level_name, target.area_code))
            svc.append_event(s, row, "system", "escalate", row.state, note=note, data=data, now_ms=now)
        s.flush()
        view = case_public(row, svc.policy, now)
    if result is not None:
        logger.info("case %s escalated to %s, notifying %s", case_id, result["level_name"], result["notify"])
        svc.publish("escalated", view, notification=result)
    else:
        svc.publish("sla", view)
    return result


def sweep_task(svc: CaseCore, every_s: float = DEFAULT_SWEEP_S) -> Callable[[threading.Event], None]:
    """A ctx task running :func:`sweep` every ``every_s`` seconds until stopped."""

    def run(stop: threading.Event) -> None:
        while not stop.wait(every_s):
            try:
                sweep(svc)
            except Exception:
                logger.exception("SLA sweep failed")

    return run
