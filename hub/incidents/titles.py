"""An incident group's title as a message of :mod:`hub.texts.catalogue`, derived from what the group stores.

A group is titled after its first incident until a second joins, then
"N incidents: category in scope" (:meth:`hub.incidents.service.IncidentService._join_group`);
both are rebuilt here from the stored title and the members' own title messages,
so groups need no column of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from edge.vocabulary import CATEGORIES, Category
from hub.texts.catalogue import TEXTS, both, msg

_MANY: Final = re.compile(r"^(\d+) incidents: .* in (.+)$")


def category_name(category: str) -> dict[str, str]:
    """A category's name as a localized literal (the vocabulary's Chinese name; English as the hub writes it)."""
    info = CATEGORIES.get(Category(category)) if category in CATEGORIES else None
    return both(category.replace("_", " "), info.zh if info else "")


def title_msg_of(detail: Any) -> Mapping[str, Any] | None:
    """The title message an incident stored in its ``detail`` (None for rows from before messages)."""
    texts = detail.get(TEXTS) if isinstance(detail, Mapping) else None
    found = texts.get("title") if isinstance(texts, Mapping) else None
    return found if isinstance(found, Mapping) else None


def group_title_msg(title: str, category: str, members: Iterable[Sequence[Any]]) -> Mapping[str, Any] | None:
    """The group's title message; ``members`` are (id, ..., detail) rows with the detail last."""
    many = _MANY.match(title)
    if many is not None:
        return msg("incident.group", count=int(many.group(1)), category=category_name(category), where=many.group(2))
    first = min(members, key=lambda r: r[0], default=None)
    return None if first is None else title_msg_of(first[-1])
