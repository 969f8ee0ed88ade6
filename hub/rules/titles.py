"""A rule's title in both languages, and the incident title messages built from it (:mod:`hub.texts.catalogue`).

A rule's ``title_zh`` gives its Chinese title. A hub whose rules were seeded before the
default rules had Chinese titles keeps its stored rules; a stored default rule whose
English title is still the shipped one then takes the shipped Chinese title.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from hub.rules.loader import default_rules
from hub.rules.models import RuleBase
from hub.texts.catalogue import both, msg


@cache
def _shipped() -> dict[str, tuple[str, str]]:
    """Rule id → (title, title_zh) of the shipped default rules."""
    return {r.id: (r.title, r.title_zh) for r in default_rules()}


def rule_title(rule: RuleBase) -> dict[str, str]:
    """The rule's title as a localized literal ``{"en": ..., "zh": ...}``."""
    return dict(_title(rule.id, rule.title, rule.title_zh, rule.display_title))


@cache
def _title(rule_id: str, title: str, title_zh: str, display: str) -> tuple[tuple[str, str], ...]:
    zh = title_zh
    if not zh:
        shipped = _shipped().get(rule_id)
        if shipped is not None and shipped[0] == title:
            zh = shipped[1]
    return tuple(both(display, zh).items())


def on_device(rule: RuleBase, device_id: str) -> dict[str, Any]:
    """The message of an incident about one device."""
    return msg("incident.on_device", rule=rule_title(rule), device=device_id)


def in_grid(rule: RuleBase, grid: str) -> dict[str, Any]:
    """The message of an incident about a grid (composite rules)."""
    return msg("incident.in_grid", rule=rule_title(rule), grid=grid)
