"""Server-written texts in the reader's language: which language a request asks for, and the
JSON views (cases, audit entries, incidents, groups, live-stream events) rendered in it.

The language is ``?lang=zh|en`` when given, else the ``Accept-Language`` header (highest q
of ``zh*`` / ``en*``), else English. Views carry their texts' messages (:mod:`hub.texts.catalogue`):
a case and a group in ``texts``, an incident in ``detail.texts``, an audit entry in
``data.texts``; each field with a message is replaced by its rendering. A field without
one (a row from before messages, a text a person wrote) reads as stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from hub.cases.texts import event_note_msg
from hub.incidents.titles import title_msg_of
from hub.texts.catalogue import TEXTS, Lang, choose_lang, render


def request_lang(
    request: Request,
    lang: Annotated[
        str | None,
        Query(max_length=16, description="language of server-written texts: zh or en (default: Accept-Language)"),
    ] = None,
) -> Lang:
    """The language the caller reads: ``?lang=``, then ``Accept-Language``, else English."""
    return choose_lang(lang, request.headers.get("accept-language"))


LangDep = Annotated[Lang, Depends(request_lang)]


def _fields(view: Mapping[str, Any], texts: Any, lang: Lang) -> dict[str, Any]:
    out = dict(view)
    if isinstance(texts, Mapping):
        for name, message in texts.items():
            text = render(message, lang)
            if text is not None and name in out:
                out[name] = text
    return out


def case_view(case: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    """A case (:func:`hub.cases.records.case_public`) with the hub's texts in ``lang``."""
    return _fields(case, case.get(TEXTS), lang)


def event_view(event: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    """An audit entry (:func:`hub.cases.records.event_public`) with a hub-written note in ``lang``."""
    data = event.get("data")
    if not isinstance(data, Mapping):
        return dict(event)
    stored = isinstance(data.get(TEXTS), Mapping)
    message = event_note_msg(str(event.get("action", "")), data)
    if message is None or (not stored and lang == "en"):  # an old row in English: as it was written
        return dict(event)
    text = render(message, lang)
    return dict(event) if text is None else {**event, "note": text}


def incident_view(incident: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    """An incident (:func:`hub.incidents.views.incident_public`) with its title in ``lang``."""
    return _fields(incident, {"title": title_msg_of(incident.get("detail"))}, lang)


def group_view(group: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    """An incident group with its title in ``lang``."""
    return _fields(group, group.get(TEXTS), lang)


def cases(items: Iterable[Mapping[str, Any]], lang: Lang) -> list[dict[str, Any]]:
    """:func:`case_view` of each."""
    return [case_view(c, lang) for c in items]


def events(items: Iterable[Mapping[str, Any]], lang: Lang) -> list[dict[str, Any]]:
    """:func:`event_view` of each."""
    return [event_view(e, lang) for e in items]


def incidents(items: Iterable[Mapping[str, Any]], lang: Lang) -> list[dict[str, Any]]:
    """:func:`incident_view` of each."""
    return [incident_view(i, lang) for i in items]


def bus_data(kind: str, data: Mapping[str, Any], lang: Lang) -> Mapping[str, Any]:
    """A live-stream event's data in ``lang`` (cases, incidents and groups; other kinds as they are)."""
    if kind == "case" and isinstance(data.get("case"), Mapping):
        return {**data, "case": case_view(data["case"], lang)}
    if kind == "incident":
        return incident_view(data, lang)
    if kind == "incident_group":
        return group_view(data, lang)
    return data
