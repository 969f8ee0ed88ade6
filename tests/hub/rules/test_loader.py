"""YAML rule loading: the default set is valid and errors name the bad key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.vocabulary import EVENT_TYPES
from hub.rules.loader import RuleConfigError, default_rules, dump_rule, load_rules_file, load_rules_text, parse_rule
from hub.rules.models import EventRule, ThresholdRule


def test_default_rules_cover_the_catalog() -> None:
    rules = {r.id: r for r in default_rules()}
    kinds = {r.kind for r in rules.values()}
    assert kinds == {"threshold", "rate", "absence", "offline", "event", "data_loss", "composite"}
    # every alarm of the vocabulary has an event rule that files it under the vocabulary's category
    by_type = {t: r for r in rules.values() if isinstance(r, EventRule) for t in r.event_types}
    assert set(by_type) == set(EVENT_TYPES)
    for event_type, info in EVENT_TYPES.items():
        assert by_type[event_type].category == info.category, event_type
    assert (rules["smoke"].category, rules["smoke"].severity) == ("fire_safety", "critical")
    assert (rules["kiosk_paper_out"].category, rules["kiosk_paper_out"].severity) == ("kiosk_service", "minor")
    assert (rules["camera_tamper"].category, rules["camera_tamper"].severity) == ("public_security", "major")
    hot = rules["temperature_high"]
    assert isinstance(hot, ThresholdRule)
    assert (hot.op, hot.value, hot.for_s, hot.clear_value, hot.clear_for_s) == (">", 60, 30, 55, 60)


def test_round_trip_through_dump() -> None:
    for rule in default_rules():
        assert parse_rule(dump_rule(rule)) == rule


@pytest.mark.parametrize(
    ("yaml_text", "path"),
    [
        ("rules:\n - {id: a, kind: threshold, metric: t, op: '>', value: 1, category: fire_safety, severity: loud}",
         "rules[0].severity"),
        ("rules:\n - {id: a, kind: event, event_types: [smoke], category: fire_safety, severity: minor}\n"
         " - {id: b, kind: event, event_types: [smoke], category: fire_safety, severity: minor,"
         " scope: {grids: ['1'], colour: r}}",
         "rules[1].scope.colour"),
        ("rules:\n - {id: a, kind: magic, category: fire_safety, severity: minor}", "rules[0].kind"),
        ("rules:\n - {id: a, kind: event, event_types: [smoke], category: fire_safety, severity: minor}\n"
         " - {id: a, kind: event, event_types: [heat], category: fire_safety, severity: minor}", "rules[1].id"),
        ("rules:\n - {id: A!, kind: absence, after_s: 5, category: fire_safety, severity: minor}", "rules[0].id"),
        ("rules:\n - {id: a, kind: threshold, metric: t, op: '>', value: 60, clear_value: 70, category: fire_safety,"
         " severity: minor}", "rules[0]"),
        ("rules:\n - {id: a, kind: composite, min_devices: 3, within_s: 5, category: fire_safety, severity: minor}",
         "rules[0]"),
        ("rulez: []", "rulez"),
        ("rules: [", "<text>"),
    ],
)  # fmt: skip
def test_errors_name_the_bad_key(yaml_text: str, path: str) -> None:
    with pytest.raises(RuleConfigError) as err:
        load_rules_text(yaml_text)
    assert err.value.path == path


def test_load_file(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("rules:\n - {id: down, kind: offline, category: device_fault, severity: major, after_s: 60}\n")
    [rule] = load_rules_file(f)
    assert rule.kind == "offline" and rule.after_s == 60
