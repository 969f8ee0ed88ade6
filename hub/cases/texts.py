"""Messages (:mod:`hub.texts.catalogue`) of the texts the case workflow writes: device case titles and
descriptions, escalation notes; stored beside the English so readers get their language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.texts.catalogue import CATALOGUE, TEXTS, msg


def group_texts(data: Mapping[str, Any]) -> dict[str, Any]:
    """Messages of a device case's title and description, from its incident group's data."""
    texts: dict[str, Any] = {
        "description": msg("case.device_description", site=str(data.get("site")), devices=str(data.get("device_ids")))
    }
    group_msgs = data.get(TEXTS)
    title = group_msgs.get("title") if isinstance(group_msgs, Mapping) else None
    if isinstance(title, Mapping):
        texts["title"] = dict(title)
    elif not data.get("title"):
        texts["title"] = msg("case.incident_group", group=str(data.get("group_id")))
    return texts


def escalation_note(stage: str | None, level_name: str, area: str) -> dict[str, Any]:
    """The message of an escalation note ("handle overdue: escalated to the street (110105001)")."""
    stage_word: Any = msg(f"stage.{stage}") if f"stage.{stage}" in CATALOGUE else str(stage)
    level_word: Any = msg(f"level.{level_name}") if f"level.{level_name}" in CATALOGUE else level_name
    return msg("case.escalated", stage=stage_word, level=level_word, area=area)


def note_texts(note: Mapping[str, Any]) -> dict[str, Any]:
    """What an audit entry's ``data`` carries for its note's message."""
    return {TEXTS: {"note": dict(note)}}


def event_note_msg(action: str, data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The note message of an audit entry: the stored one, or (escalations written before messages)
    one rebuilt from the entry's data; None when the note is what a person wrote."""
    texts = data.get(TEXTS)
    found = texts.get("note") if isinstance(texts, Mapping) else None
    if isinstance(found, Mapping):
        return found
    if action == "escalate" and {"stage", "level_name", "area"} <= data.keys():
        return escalation_note(str(data["stage"]), str(data["level_name"]), str(data["area"]))
    return None
