"""Named calendars in the cases YAML: which rule runs on which calendar, and what is refused at load."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.cases.loader import ConfigError, load_yaml, parse_config, sla_policy
from simulators.community import generate_community
from simulators.community_workflow import to_workflow

EXAMPLE = Path(__file__).parents[3] / "hub" / "cases" / "example.yaml"
CITY: dict[str, Any] = {"city": {"code": "110000", "name": "Test City"}}


def _calendars_of(category: str, severity: str, text: str) -> set[str]:
    policy = sla_policy(load_yaml(text))
    return {policy.stage_limit(category, severity, s).calendar_name for s in ("dispatch", "accept", "handle")}


def test_example_runs_fire_and_critical_cases_around_the_clock_and_routine_on_office_hours() -> None:
    text = EXAMPLE.read_text()
    policy = sla_policy(load_yaml(text))
    assert set(policy.calendars) == {"always", "office"} and policy.default_calendar == "office"
    assert policy.calendars["office"].holidays == frozenset({date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 5)})
    assert _calendars_of("fire_safety", "critical", text) == {"always"}
    assert _calendars_of("fire_safety", "minor", text) == {"always"}
    assert _calendars_of("public_security", "critical", text) == {"always"}
    assert _calendars_of("public_security", "minor", text) == {"always"}
    assert _calendars_of("environment_sanitation", "minor", text) == {"office"}
    assert _calendars_of("kiosk", "major", text) == {"office"}
    # a day on the around-the-clock calendar is 24 h, on office hours 7.5 working hours
    assert policy.limit("facilities", "critical", "handle") == timedelta(days=3)
    assert policy.limit("public_security", "minor", "handle") == timedelta(hours=8)
    assert policy.limit("environment_sanitation", "minor", "handle") == timedelta(hours=3 * 7.5)


def test_generated_community_workflow_declares_the_same_split() -> None:
    text = yaml.safe_dump(to_workflow(generate_community(3, seed=2)))
    assert _calendars_of("fire_safety", "critical", text) == {"always"}
    assert _calendars_of("fire_safety", "major", text) == {"always"}
    assert _calendars_of("public_security", "critical", text) == {"always"}
    assert _calendars_of("environment_sanitation", "minor", text) == {"office"}
    assert _calendars_of("device_fault", "major", text) == {"office"}


def test_unknown_calendar_is_refused_naming_the_word_and_the_known_ones() -> None:
    text = EXAMPLE.read_text().replace("severity: critical, calendar: always", "severity: critical, calendar: allways")
    with pytest.raises(ConfigError) as info:
        load_yaml(text)
    assert info.value.path == "sla.1.calendar"
    assert "'allways'" in info.value.message and "known calendars: always, office" in info.value.message


def test_unknown_default_calendar_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(EXAMPLE.read_text().replace("default_calendar: office", "default_calendar: ofice"))
    assert info.value.path == "default_calendar"
    assert "'ofice'" in info.value.message and "always, office" in info.value.message


def test_the_one_calendar_form_still_loads_as_the_default_calendar() -> None:
    cfg = parse_config(
        CITY
        | {
            "calendar": {"hours": [["08:00", "17:00"]], "holidays": ["2026-10-01"]},
            "sla": [{"category": "fire_safety", "handle": "1d"}],
        }
    )
    policy = sla_policy(cfg)
    assert list(policy.calendars) == ["office"]
    found = policy.stage_limit("fire_safety", "critical", "handle")
    assert (found.calendar_name, found.limit) == ("office", timedelta(hours=9))
    assert found.calendar.holidays == frozenset({date(2026, 10, 1)})
    # no calendar at all: office hours, as before calendars had names
    bare = sla_policy(parse_config(CITY))
    assert bare.limit("x", "y", "handle") == timedelta(hours=15)
    assert list(bare.calendars) == ["office"]


def test_one_calendar_form_next_to_named_calendars() -> None:
    both = CITY | {"calendar": {}, "calendars": {"office": {}}}
    with pytest.raises(ConfigError) as info:
        parse_config(both)
    assert info.value.path == "calendar" and "twice" in info.value.message
    # with another default name, calendar: is that default and may sit beside others
    policy = sla_policy(
        parse_config(
            CITY
            | {
                "calendar": {},
                "calendars": {"always": {"around_the_clock": True}},
                "default_calendar": "weekdays",
                "sla": [{"category": "fire_safety", "calendar": "always", "handle": "1d"}],
            }
        )
    )
    assert set(policy.calendars) == {"always", "weekdays"}
    assert policy.limit("fire_safety", "critical", "handle") == timedelta(days=1)
    assert policy.stage_limit("noise", "minor", "handle").calendar_name == "weekdays"


def test_bad_calendars_are_refused_with_their_path() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"calendars": {"always": {"around_the_clock": True, "weekend": [6]}}}, "calendars.always"),
        ({"calendars": {"office": {"hours": [["18:00", "09:00"]]}}}, "calendars.office"),
        ({"calendar": {"weekend": [0, 1, 2, 3, 4, 5, 6]}}, "calendar"),
        ({"calendars": {"Always!": {"around_the_clock": True}}}, "calendars.Always!.[key]"),
        ({"calendars": {"office": {}}, "sla": [{"handle": "soon"}]}, "sla"),
    ]
    for doc, path in cases:
        with pytest.raises(ConfigError) as info:
            parse_config(CITY | doc)
        assert info.value.path == path, (doc, info.value)
