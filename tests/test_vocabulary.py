"""The one vocabulary: every component takes its names from it, and config naming other words is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.camera import pipeline
from edge.vocabulary import (
    CATEGORIES,
    EVENT_TYPES,
    HUB_EVENT_TYPES,
    METRICS,
    UnknownNameError,
    closest,
    event_types_of,
    owner_routing,
    require_known,
)
from edge.wire import DeviceKind
from hub.cases.loader import ConfigError, load_yaml, parse_config, sla_policy
from hub.config import HubSettings
from hub.rules.loader import RuleConfigError, default_rules, load_rules_text
from hub.rules.models import EventRule
from simulators.community import FORCES, generate_community
from simulators.community_workflow import to_workflow
from simulators.profiles import PROFILES
from simulators.scenario import ScenarioError, load_scenario, parse_scenario, shipped
from simulators.sim_kiosk import TRIGGERS

EXAMPLE_PATH = Path(__file__).parents[1] / "hub" / "cases" / "example.yaml"


def test_closest_names_the_intended_word() -> None:
    assert closest("tamper_defocused", EVENT_TYPES) == "tamper_defocus"
    assert closest("kiosk", CATEGORIES) == "kiosk_service"
    assert closest("fire", CATEGORIES) == "fire_safety"
    assert closest("zzz", CATEGORIES) is None
    with pytest.raises(UnknownNameError) as info:
        require_known("category", "sanitation", CATEGORIES)
    assert (info.value.word, info.value.closest) == ("sanitation", "environment_sanitation")


def test_drivers_and_simulators_raise_only_vocabulary_words() -> None:
    sensor_alarms = {a.type for p in PROFILES.values() for a in p.alarms}
    assert sensor_alarms == set(event_types_of(DeviceKind.SENSOR))
    assert set(TRIGGERS) == set(event_types_of(DeviceKind.KIOSK))
    camera = {pipeline.CROWD, pipeline.INTRUSION, pipeline.LOITERING, pipeline.COVERED, pipeline.DEFOCUS}
    camera |= {pipeline.MOVED, pipeline.STREAM_LOST}
    assert camera <= set(event_types_of(DeviceKind.CAMERA))
    assert pipeline.DEFOCUS == "tamper_defocus"
    for profile in PROFILES.values():
        for metric in profile.metrics:
            assert metric.name in METRICS, metric.name
    assert not set(HUB_EVENT_TYPES) & {t for k in DeviceKind for t in event_types_of(k)}


def test_rules_file_with_an_unknown_event_type_is_refused_by_name() -> None:
    text = (
        "rules:\n - {id: t, kind: event, title: Tampered, event_types: [tamper_covered, tamper_defocused],"
        " category: public_security, severity: major}"
    )
    with pytest.raises(RuleConfigError) as info:
        load_rules_text(text)
    assert info.value.path == "rules[0]"
    assert "'tamper_defocused'" in str(info.value) and "'tamper_defocus'" in str(info.value)
    with pytest.raises(RuleConfigError, match="'kiosk_service'"):
        load_rules_text("rules:\n - {id: p, kind: event, event_types: [paper_out], category: kiosk, severity: minor}")
    # an operator's own alarm is declared, and a declaration may not shadow a vocabulary word
    [own] = load_rules_text(
        "rules:\n - {id: b, kind: event, event_types: [balcony_fire], declares: [balcony_fire],"
        " category: fire_safety, severity: critical}"
    )
    assert isinstance(own, EventRule) and own.event_types == ("balcony_fire",)
    with pytest.raises(RuleConfigError, match="already defines"):
        load_rules_text(
            "rules:\n - {id: s, kind: event, event_types: [smoke], declares: [smoke],"
            " category: fire_safety, severity: critical}"
        )


def test_cases_file_with_an_unknown_category_or_force_kind_is_refused_by_name() -> None:
    base = EXAMPLE_PATH.read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_yaml(base.replace("  kiosk_service: it\n", "  kiosk: it\n"))
    assert info.value.path == "routing" and "'kiosk'" in info.value.message and "'kiosk_service'" in info.value.message
    with pytest.raises(ConfigError, match="'fire_safety'"):
        load_yaml(
            base.replace(
                "{category: fire_safety, calendar: always, dispatch: 15m",
                "{category: fire, calendar: always, dispatch: 15m",
            )
        )
    with pytest.raises(ConfigError, match="force kind 'firemen'"):
        load_yaml(base.replace("kind: fire}", "kind: firemen}"))


def test_shipped_configs_route_every_owned_category_to_its_owner() -> None:
    rules = default_rules()
    used = {r.category for r in rules}
    example = load_yaml(EXAMPLE_PATH.read_text(encoding="utf-8"))
    kinds = {f.id: f.kind for f in example.forces}
    for config_routing, forces in (
        (example.routing, kinds),
        (to_workflow(generate_community(seed=7))["routing"], {k: k for k in FORCES}),
    ):
        for category in used:
            owner = CATEGORIES[category].owner  # type: ignore[index]
            assert owner is not None and category in config_routing, category
            if forces is kinds:
                assert kinds[config_routing[category]] == owner
    assert owner_routing(kinds) == example.routing


def test_scenario_with_an_unknown_condition_or_category_is_refused_by_name() -> None:
    for name, path in shipped().items():
        assert load_scenario(path).name, name  # every shipped scenario speaks the vocabulary
    doc = yaml.safe_load(shipped()["kiosk-paper-outage"].read_text(encoding="utf-8"))
    text = yaml.safe_dump(doc)
    with pytest.raises(ScenarioError, match=r"'paper_outage'.*'paper_out'"):
        parse_scenario(yaml.safe_load(text.replace("condition: paper_out", "condition: paper_outage")))
    with pytest.raises(ScenarioError, match=r"'kiosk'.*'kiosk_service'"):
        parse_scenario(yaml.safe_load(text.replace("category: kiosk_service", "category: kiosk")))


def test_hub_setting_naming_an_unknown_public_category_is_refused() -> None:
    assert HubSettings.model_validate(
        {"open311_public_categories": "fire_safety,kiosk_service"}
    ).open311_public_categories == (
        "fire_safety",
        "kiosk_service",
    )
    with pytest.raises(ValueError, match=r"'sanitation'.*'environment_sanitation'"):
        HubSettings.model_validate({"open311_public_categories": "sanitation"})


@pytest.mark.parametrize("source", ["example", "community"])
def test_the_shipped_case_configs_run_around_the_clock_where_the_vocabulary_says(source: str) -> None:
    """A category the vocabulary marks around-the-clock (and any critical case) never waits for Monday."""
    doc = (
        yaml.safe_load((Path(__file__).parent.parent / "hub" / "cases" / "example.yaml").read_text())
        if source == "example"
        else to_workflow(generate_community(1, seed=1))
    )
    policy = sla_policy(parse_config(doc))
    for category, info in CATEGORIES.items():
        for severity in ("minor", "major", "critical"):
            want = "always" if info.around_the_clock or severity == "critical" else "office"
            for stage in ("dispatch", "accept", "handle"):
                got = policy.stage_limit(category.value, severity, stage).calendar_name
                assert got == want, (category.value, severity, stage)
