"""Where cases come from: operators, residents (Open311) and device incident groups.

One case per incident group: the ``group_id`` column is unique, so two hub
replicas racing on the same group end with one case; the loser attaches instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from edge.vocabulary import CATEGORY_NAMES, UnknownNameError, require_known
from hub.cases.audit import GENESIS
from hub.cases.core import CaseCore
from hub.cases.errors import CaseServiceError, InvalidInputError
from hub.cases.machine import State, TransitionError
from hub.cases.models import CaseRow
from hub.cases.plans import checklist
from hub.cases.records import case_public
from hub.cases.stages import enter_stage
from hub.cases.texts import group_texts

logger = logging.getLogger(__name__)
SYSTEM = "system"
MAX_ATTEMPTS = 60


def create_case(
    svc: CaseCore,
    *,
    source: str,
    category: str,
    title: str,
    severity: str = "normal",
    description: str = "",
    grid_code: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    address: str = "",
    reporter_id: str | None = None,
    actor: str = SYSTEM,
    group_id: str | None = None,
    incident_ids: Sequence[Any] = (),
    register: bool = False,
    event_types: Sequence[str] = (),
    media_sha256: str | None = None,
    alarm_times: tuple[int, int] | None = None,
    texts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Report a new case (optionally registered at once); raise IntegrityError on a duplicate group.

    The most specific emergency plan for its category, severity and event types is copied
    onto it; ``media_sha256`` names a resident's face-filtered photo (also the report's evidence);
    ``alarm_times``: a device case's (raised on the device, received by the hub) times, in its trace;
    ``texts``: messages (:mod:`hub.texts.catalogue`) of the fields the hub wrote, rendered in the reader's language.
    """
    try:
        require_known("category", category, CATEGORY_NAMES)
    except UnknownNameError as exc:
        raise InvalidInputError("unknown_category", str(exc)) from exc
    model = svc.directory.model()
    if grid_code is None and lat is not None and lon is not None:
        area = model.locate(lon, lat)
        grid_code = area.code if area else None
    if grid_code is not None and grid_code not in model.areas:
        raise InvalidInputError("unknown_grid", f"unknown grid {grid_code!r}")
    now = svc.now_ms()
    plan = svc.plans.match(category, severity, event_types)
    with svc.sessions() as s, s.begin():
        row = CaseRow(
            source=source,
            group_id=group_id,
            category=category,
            severity=severity,
            grid_code=grid_code,
            title=title[:300],
            description=description,
            lat=lat,
            lon=lon,
            address=address,
            reporter_id=reporter_id,
            state=State.REPORTED.value,
            assignees=[],
            incident_ids=list(incident_ids),
            created_ms=now,
            updated_ms=now,
            audit_head=GENESIS,
            audit_count=0,
            rework_count=0,
            paused=False,
            fallback=False,
            escalation_level=0,
            stage_paused_s=0.0,
            breached=False,
            sla_level="green",
            plan_id=plan.id if plan else None,
            plan_steps=checklist(plan, now) if plan else None,
            media_sha256=media_sha256,
            texts=dict(texts) if texts else None,
        )
        report: dict[str, Any] = {"source": source}
        if alarm_times is not None:
            row.alarm_raised_ms, row.alarm_received_ms = alarm_times
            report |= {"alarm_raised_ms": alarm_times[0], "alarm_received_ms": alarm_times[1]}
        enter_stage(row, svc.policy, "dispatch", now)
        s.add(row)
        s.flush()
        data = report | ({"plan": plan.id} if plan else {})
        evidence = [media_sha256] if media_sha256 else []
        svc.append_event(s, row, actor, "report", "", data=data, evidence=evidence, now_ms=now)
        if register:
            row.state = State.REGISTERED.value
            svc.append_event(s, row, actor, "register", State.REPORTED.value, now_ms=now)
        s.flush()
        view = case_public(row, svc.policy, now)
    svc.publish("report", view)
    return view


def incident_group(svc: CaseCore, data: Mapping[str, Any]) -> int | None:
    """One case per incident group, auto-dispatched by routing; later incidents attach to it."""
    group_id = str(data["group_id"])
    incident_ids = list(data.get("incident_ids") or [])
    case_id = _case_for_group(svc, group_id)
    if case_id is None and data.get("state", "open") == "open":
        try:
            view = create_case(
                svc,
                source="device",
                group_id=group_id,
                category=str(data.get("category", "unknown")),
                severity=str(data.get("severity", "normal")),
                grid_code=_known_grid(svc, data),
                title=str(data.get("title") or f"incident group {group_id}"),
                description=f"site {data.get('site')}, devices {data.get('device_ids')}",
                incident_ids=incident_ids,
                alarm_times=_alarm_times(data),
                event_types=[str(t) for t in data.get("event_types") or ()],
                texts=group_texts(data),
            )
        except IntegrityError:
            case_id = _case_for_group(svc, group_id)  # another replica won the race
        else:
            _auto_dispatch(svc, int(view["id"]))
            return int(view["id"])
    if case_id is not None:
        _attach(svc, case_id, incident_ids, str(data.get("state", "open")))
    return case_id


def _alarm_times(data: Mapping[str, Any]) -> tuple[int, int] | None:
    """(raised, received) of the alarm that opened the group, when the incident service gave them."""
    raised, received = data.get("alarm_raised_ms"), data.get("alarm_received_ms")
    return None if raised is None or received is None else (int(raised), int(received))


def _known_grid(svc: CaseCore, data: Mapping[str, Any]) -> str | None:
    grid = data.get("grid")
    return str(grid) if grid and str(grid) in svc.directory.model().areas else None


def _case_for_group(svc: CaseCore, group_id: str) -> int | None:
    with svc.sessions() as s:
        return s.execute(select(CaseRow.id).where(CaseRow.group_id == group_id)).scalar_one_or_none()


def _auto_dispatch(svc: CaseCore, case_id: int) -> None:
    for action in ("register", "dispatch"):
        try:
            svc.transition(case_id, action, SYSTEM, {})
        except (CaseServiceError, TransitionError) as exc:
            # e.g. no grid or nobody responsible: the case waits, registered, for an operator
            logger.warning("case %s: automatic %s failed: %s", case_id, action, exc)
            return


def _attach(svc: CaseCore, case_id: int, incident_ids: Sequence[Any], group_state: str) -> None:
    for _ in range(MAX_ATTEMPTS):
        try:
            with svc.sessions() as s, s.begin():
                row = svc.row(s, case_id, lock=True)
                new = [i for i in incident_ids if i not in (row.incident_ids or [])]
                if not new:
                    return
                row.incident_ids = [*(row.incident_ids or []), *new]
                svc.append_event(
                    s,
                    row,
                    SYSTEM,
                    "attach",
                    row.state,
                    data={"incident_ids": new, "group_state": group_state},
                    now_ms=svc.now_ms(),
                )
                s.flush()
                view = case_public(row, svc.policy, svc.now_ms())
            svc.publish("attach", view)
            return
        except (StaleDataError, IntegrityError, OperationalError):
            continue
    logger.error("case %s: could not attach incidents %s after %s attempts", case_id, incident_ids, MAX_ATTEMPTS)
