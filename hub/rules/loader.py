"""Load rule sets from YAML; every error names the key path that is wrong."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hub.rules.models import RULE_ADAPTER, Rule

logger = logging.getLogger(__name__)

_KINDS = ("threshold", "rate", "absence", "offline", "event", "data_loss", "composite")


class RuleConfigError(ValueError):
    """A rule definition is invalid; ``path`` is the bad key (``rules[2].scope.kinds[0]``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.detail = message


def _join(prefix: str, loc: Iterable[int | str]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _KINDS:
            continue  # pydantic adds the discriminator tag to the location; it is not a key
        else:
            path += f".{part}" if path else str(part)
    return path


def parse_rule(raw: object, where: str = "rule") -> Rule:
    """Validate one rule mapping; raise :class:`RuleConfigError` naming the first bad key."""
    if not isinstance(raw, Mapping):
        raise RuleConfigError(where, f"must be a mapping, not {type(raw).__name__}")
    try:
        return RULE_ADAPTER.validate_python(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += ("kind",)  # a missing or unknown kind is reported at the rule, but the key is 'kind'
        raise RuleConfigError(_join(where, loc), first["msg"]) from exc


def parse_rules(data: object, source: str = "rules") -> list[Rule]:
    """Validate a document ``{rules: [...]}`` (or a bare list); ids must be unique."""
    if isinstance(data, Mapping):
        extra = set(data) - {"rules"}
        if extra:
            raise RuleConfigError(sorted(str(k) for k in extra)[0], "unknown top-level key (expected 'rules')")
        data = data.get("rules") or []
    if not isinstance(data, Sequence) or isinstance(data, str):
        raise RuleConfigError("rules", f"{source} must hold a list of rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(data):
        rule = parse_rule(raw, f"rules[{i}]")
        if rule.id in seen:
            raise RuleConfigError(f"rules[{i}].id", f"duplicate rule id {rule.id!r}")
        seen.add(rule.id)
        rules.append(rule)
    return rules


def load_rules_text(text: str, source: str = "<text>") -> list[Rule]:
    """Parse YAML text into rules."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleConfigError(source, f"not valid YAML: {exc}") from exc
    return parse_rules(data if data is not None else [], source)


def load_rules_file(path: Path) -> list[Rule]:
    """Parse a YAML rule file."""
    return load_rules_text(path.read_text(encoding="utf-8"), str(path))


def default_rules() -> list[Rule]:
    """The shipped default rule set (``hub/rules/defaults.yaml``)."""
    text = resources.files("hub.rules").joinpath("defaults.yaml").read_text(encoding="utf-8")
    return load_rules_text(text, "defaults.yaml")


def dump_rule(rule: Rule) -> dict[str, Any]:
    """A rule as a JSON/YAML-ready mapping (defaults omitted)."""
    return rule.model_dump(mode="json", exclude_defaults=True) | {"kind": rule.kind}
