"""Every text the hub writes for people, in English and Chinese, rendered in the reader's language.

What the hub stores is language-neutral: a *message* ``{"key": ..., "params": {...}}``
naming an entry of :data:`CATALOGUE`, next to the English text it renders to (kept for
old readers, logs and rows written before messages existed). The API renders the
message in the reader's language when it answers (:mod:`hub.texts.language`).

A parameter is plain (a device id, a count), a *localized literal* ``{"en": ..., "zh": ...}``
(a rule's title, a category name) or a nested message (a stage or level word). Templates
use ``str.format`` named fields only; every key has both languages with the same fields
(tests/hub/test_texts.py checks it).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias

Lang: TypeAlias = Literal["en", "zh"]
LANGS: Final[tuple[Lang, ...]] = ("en", "zh")
DEFAULT_LANG: Final[Lang] = "en"
#: Where a stored view keeps the messages of its text fields: ``{"title": message, ...}``.
TEXTS: Final = "texts"

CATALOGUE: Final[Mapping[str, Mapping[Lang, str]]] = {
    # ---------------------------------------------------------------- incidents
    "incident.on_device": {"en": "{rule} on {device}", "zh": "{rule}（设备 {device}）"},
    "incident.in_grid": {"en": "{rule} in grid {grid}", "zh": "{rule}（网格 {grid}）"},
    "incident.group": {"en": "{count} incidents: {category} in {where}", "zh": "{where}：{category}事件 {count} 起"},
    "incident.command_timeout": {"en": "Device did not answer the {op} command", "zh": "设备未应答 {op} 指令"},
    "incident.command_answers": {"en": "Device answers commands again", "zh": "设备已恢复应答指令"},
    # -------------------------------------------------------------------- cases
    "case.incident_group": {"en": "incident group {group}", "zh": "事件组 {group}"},
    "case.device_description": {"en": "site {site}, devices {devices}", "zh": "站点 {site}，设备 {devices}"},
    "case.escalated": {
        "en": "{stage} overdue: escalated to the {level} ({area})",
        "zh": "{stage}环节超时：已升级至{level}（{area}）",
    },
    "stage.dispatch": {"en": "dispatch", "zh": "派遣"},
    "stage.accept": {"en": "accept", "zh": "受理"},
    "stage.handle": {"en": "handle", "zh": "处置"},
    "level.community": {"en": "community", "zh": "社区"},
    "level.street": {"en": "street", "zh": "街道"},
    "level.district": {"en": "district", "zh": "区"},
    "level.city": {"en": "city", "zh": "市"},
    # ------------------------------------------------------- Open311 (residents)
    "open311.status.reported": {"en": "Received; waiting to be registered.", "zh": "已收到，等待登记。"},
    "open311.status.registered": {"en": "Registered by the service centre.", "zh": "服务中心已登记。"},
    "open311.status.dispatched": {
        "en": "Dispatched to the responsible grid worker and force.",
        "zh": "已派遣给责任网格员和处置力量。",
    },
    "open311.status.accepted": {"en": "Accepted by the handler.", "zh": "处置人员已受理。"},
    "open311.status.handling": {"en": "Being handled.", "zh": "正在处置。"},
    "open311.status.returned": {"en": "Being re-dispatched to the right team.", "zh": "正在重新派遣给对口队伍。"},
    "open311.status.feedback": {"en": "Handled; awaiting verification.", "zh": "已处置，等待核查。"},
    "open311.status.verified": {"en": "Verified; about to be closed.", "zh": "已核查，即将结案。"},
    "open311.status.closed": {"en": "Closed after verification.", "zh": "核查后已结案。"},
    "open311.status.evaluated": {"en": "Closed and evaluated.", "zh": "已结案并评价。"},
    "open311.status.cancelled": {"en": "Cancelled.", "zh": "已撤销。"},
    "open311.status.merged": {
        "en": "Merged into another request about the same problem.",
        "zh": "已与反映同一问题的其他诉求合并。",
    },
    "open311.agency.centre": {"en": "Community service centre", "zh": "社区服务中心"},
    "open311.service.handled_by": {"en": "Handled by {force}", "zh": "由{force}处置"},
    "open311.service.handled_by_centre": {
        "en": "Handled by the community service centre",
        "zh": "由社区服务中心处置",
    },
}


def msg(key: str, **params: Any) -> dict[str, Any]:
    """A stored message; ``key`` must be in the catalogue."""
    if key not in CATALOGUE:
        raise KeyError(f"no text {key!r} in hub.texts.catalogue.CATALOGUE")
    return {"key": key, "params": params}


def both(en: str, zh: str = "") -> dict[str, str]:
    """A localized literal (a rule title, a category name); no ``zh`` reads as the English."""
    return {"en": en, "zh": zh or en}


def fields(template: str) -> set[str]:
    """The named fields of a template (the catalogue test compares them between languages)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _value(value: Any, lang: Lang) -> Any:
    if isinstance(value, Mapping):
        if "key" in value:
            text = render(value, lang)
            return "" if text is None else text
        if "en" in value:
            return value.get(lang) or value["en"]
    return value


def render(message: Any, lang: Lang) -> str | None:
    """``message`` in ``lang``; None when it is not a message of this catalogue (keep the stored text)."""
    if not isinstance(message, Mapping):
        return None
    entry = CATALOGUE.get(str(message.get("key")))
    if entry is None:
        return None
    params = message.get("params")
    values = {k: _value(v, lang) for k, v in (params.items() if isinstance(params, Mapping) else ())}
    try:
        return entry[lang].format_map(values)
    except (KeyError, IndexError, ValueError):
        return None  # a message stored with other parameters than the catalogue now wants


def text(key: str, lang: Lang, **params: Any) -> str:
    """The catalogue's ``key`` in ``lang`` with ``params`` (for texts rendered at once, not stored)."""
    rendered = render(msg(key, **params), lang)
    if rendered is None:
        raise KeyError(f"text {key!r} wants other parameters than {sorted(params)}")
    return rendered


def choose_lang(query: str | None = None, accept_language: str | None = None) -> Lang:
    """The reader's language: ``?lang=`` first, then ``Accept-Language`` (highest q wins); else English."""
    picked = _tag(query or "")
    if picked is not None:
        return picked
    ranked: list[tuple[float, int, Lang]] = []
    for i, part in enumerate((accept_language or "")[:1000].split(",")):
        tag, *options = part.split(";")
        q = 1.0
        for option in options:
            name, _, value = option.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        picked = _tag(tag)
        if picked is not None and q > 0:
            ranked.append((-q, i, picked))
    return min(ranked)[2] if ranked else DEFAULT_LANG


def _tag(tag: str) -> Lang | None:
    primary = tag.strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in LANGS else None


def content_language(lang: Lang) -> str:
    """The ``Content-Language`` header value of an answer in ``lang``."""
    return "zh-CN" if lang == "zh" else "en"
