"""YAML rule loading: the default set is valid and errors name the bad key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.rules.loader import RuleConfigError, default_rules, dump_rule, load_rules_file, load_rules_text, parse_rule
from hub.rules.models import ThresholdRule


def test_default_rules_cover_the_catalog() -> None:
    rules = {r.id: r for r in default_rules()}
    kinds = {r.kind for r in rules.values()}
    assert kinds == {"threshold", "rate", "absence", "offline", "event", "data_loss", "composite"}
    mapped = {t for r in rules.values() if r.kind == "event" for t in r.event_types}
    for needed in (
        "smoke", "gas_leak", "water_leak", "manhole_tilt", "charger_overheat", "low_pressure", "bin_full",
        "paper_out", "printer_jam", "reader_fault", "app_crash", "door_open", "disk_full", "network_down",
        "crowd", "intrusion", "loitering", "tamper", "stream_lost",
    ):  # fmt: skip
        assert needed in mapped, needed
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
        ("rules:\n - {id: a, kind: threshold, metric: t, op: '>', value: 1, category: c, severity: loud}",
         "rules[0].severity"),
        ("rules:\n - {id: a, kind: event, event_types: [x], category: c, severity: minor}\n"
         " - {id: b, kind: event, event_types: [x], category: c, severity: minor, scope: {grids: ['1'], colour: r}}",
         "rules[1].scope.colour"),
        ("rules:\n - {id: a, kind: magic, category: c, severity: minor}", "rules[0].kind"),
        ("rules:\n - {id: a, kind: event, event_types: [x], category: c, severity: minor}\n"
         " - {id: a, kind: event, event_types: [y], category: c, severity: minor}", "rules[1].id"),
        ("rules:\n - {id: A!, kind: absence, after_s: 5, category: c, severity: minor}", "rules[0].id"),
        ("rules:\n - {id: a, kind: threshold, metric: t, op: '>', value: 60, clear_value: 70, category: c,"
         " severity: minor}", "rules[0]"),
        ("rules:\n - {id: a, kind: composite, min_devices: 3, within_s: 5, category: c, severity: minor}",
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
