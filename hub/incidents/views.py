"""Public (JSON-ready) forms of incidents, notes and groups, shared by the bus, the API and cases."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from hub.incidents.models import OPEN, IncidentGroupRow, IncidentNoteRow, IncidentRow
from hub.incidents.titles import group_title_msg
from hub.texts.catalogue import TEXTS


def incident_public(row: IncidentRow) -> dict[str, Any]:
    """An incident as it is published and served."""
    detail = dict(row.detail or {})
    return {
        "id": row.id,
        "rule_id": row.rule_id,
        "rule_kind": row.rule_kind,
        "subject": row.subject,
        "device_id": row.device_id,
        "site": row.site,
        "grid": row.grid,
        "category": row.category,
        "severity": row.severity,
        "state": row.state,
        "title": row.title,
        "detail": detail,
        "last_value": row.last_value,
        "repeats": row.repeats or 0,
        "flap_count": row.flap_count or 0,
        "event_ids": list(row.event_ids or []),
        "opened_ms": row.opened_ms,
        # raised on the device (its clock) and received by the hub: apart when the alarm was replayed
        # from the device's buffer after an outage (``hist``)
        "raised_ms": row.opened_ms,
        "received_ms": int(detail.get("received_ms", row.opened_ms)),
        "hist": bool(detail.get("hist")),
        "updated_ms": row.updated_ms,
        "closed_ms": row.closed_ms,
        "close_reason": row.close_reason,
        "acked_by": row.acked_by,
        "acked_ms": row.acked_ms,
        "group_id": row.group_id,
    }


def note_public(row: IncidentNoteRow) -> dict[str, Any]:
    """An operator note."""
    return {"id": row.id, "incident_id": row.incident_id, "author": row.author, "text": row.text, "ts_ms": row.ts_ms}


#: The member columns :func:`group_public` reads, in its order.
MEMBER_COLUMNS: Final = (IncidentRow.id, IncidentRow.device_id, IncidentRow.state, IncidentRow.detail)


def group_public(group: IncidentGroupRow, members: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """A group in the shape the case workflow takes (``on_incident_group``); members are :data:`MEMBER_COLUMNS`."""
    rows = list(members)
    open_ids = [r[0] for r in rows if r[2] == OPEN]
    devices = sorted({r[1] for r in rows if r[1]})
    # the alarms behind it: an emergency plan may be for a gas leak only, not every fire_safety case
    event_types = sorted({str(r[3]["event_type"]) for r in rows if isinstance(r[3], dict) and r[3].get("event_type")})
    title_msg = group_title_msg(group.title, group.category, rows)
    return {
        "group_id": group.id,
        "category": group.category,
        "severity": group.severity,
        "grid": group.grid,
        "site": group.site,
        "scope": group.scope_key,
        "state": "open" if open_ids else "closed",
        "collecting": bool(group.collecting),
        "incident_ids": sorted(r[0] for r in rows),
        "open_incident_ids": sorted(open_ids),
        "title": group.title,
        "first_ts": group.opened_ms,
        "last_ts": group.last_ms,
        "closed_ts": group.closed_ms,
        "device_ids": devices,
        "event_types": event_types,
        **({TEXTS: {"title": dict(title_msg)}} if title_msg is not None else {}),
    }
