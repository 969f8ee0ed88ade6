"""Emergency plans as pure logic: matching, checklists, what blocks closing, and config refusals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hub.cases.loader import ConfigError, parse_config, plan_book
from hub.cases.machine import CaseFacts, Command, State, TransitionError, apply
from hub.cases.plans import (
    Phase,
    Plan,
    PlanBook,
    PlanStep,
    PlanStepError,
    checklist,
    mark_done,
    may_do,
    missing_for_close,
)
from hub.cases.plugin import example_config

M = timedelta(minutes=1)


def plan(pid: str, severity: str = "*", event_types: frozenset[str] = frozenset()) -> Plan:
    steps = (
        PlanStep("notify", Phase.WARN, 5 * M, force="fire"),
        PlanStep("recover", Phase.RECOVER, 60 * M, role="grid_worker"),
        PlanStep("review", Phase.REVIEW, 120 * M, role="supervisor"),
    )
    return Plan(pid, pid, pid, "fire_safety", severity, event_types, steps)


def test_most_specific_plan_wins_whatever_the_order() -> None:
    book = PlanBook((plan("gas", "critical", frozenset({"gas_leak"})), plan("any"), plan("critical", "critical")))
    assert book.match("fire_safety", "critical", ["smoke"]) == book.plans[2]
    assert book.match("fire_safety", "critical", ["gas_leak", "smoke"]) == book.plans[0]
    assert book.match("fire_safety", "major", ["gas_leak"]) == book.plans[1]  # gas plan is for critical only
    assert book.match("facilities", "critical", []) is None


def test_checklist_is_due_from_the_report_and_blocks_close_until_recovered_and_reviewed() -> None:
    steps = checklist(plan("fire"), 1_000)
    assert steps[0] == {"name": "notify", "phase": "warn", "force": "fire", "due_ms": 301_000, "done_ms": None}
    assert steps[1]["role"] == "grid_worker" and "force" not in steps[1]
    assert missing_for_close(steps) == ("recover", "review")
    steps = mark_done(steps, "recover", "w1", 5_000)
    assert (steps[1]["done_ms"], steps[1]["done_by"]) == (5_000, "w1")
    assert missing_for_close(steps) == ("review",)
    assert missing_for_close(mark_done(steps, "review", "sup1", 6_000)) == ()
    assert missing_for_close(None) == ()


def test_marking_an_unknown_or_done_step_is_refused() -> None:
    steps = mark_done(checklist(plan("fire"), 0), "notify", "f1", 10)
    with pytest.raises(PlanStepError) as unknown:
        mark_done(steps, "evacuate", "w1", 20)
    assert unknown.value.reason == "unknown_plan_step" and "notify, recover, review" in unknown.value.message
    with pytest.raises(PlanStepError) as done:
        mark_done(steps, "notify", "f2", 20)
    assert done.value.reason == "plan_step_done" and "f1" in done.value.message


def test_who_may_mark_a_step() -> None:
    notify, recover, _ = checklist(plan("fire"), 0)
    assert may_do(recover, {"grid_worker"}, None)
    assert not may_do(recover, {"force_member"}, "fire")
    assert may_do(notify, {"force_member"}, "fire")
    assert not may_do(notify, {"force_member"}, "police")
    assert not may_do(notify, {"grid_worker"}, None)
    assert may_do(notify, {"supervisor"}, None)  # staff record it on the force's behalf


def test_machine_refuses_close_naming_the_missing_steps() -> None:
    facts = CaseFacts(state=State.VERIFIED, close_blockers=("recover", "review"))
    with pytest.raises(TransitionError) as refused:
        apply(facts, Command("close", "sup1"))
    assert refused.value.reason == "plan_steps_open" and refused.value.missing == ("recover", "review")
    assert apply(CaseFacts(state=State.VERIFIED), Command("close", "sup1")).state == State.CLOSED


def test_example_city_has_fire_and_gas_leak_plans() -> None:
    book = plan_book(example_config())
    fire, gas = book.match("fire_safety", "critical", ["smoke"]), book.match("fire_safety", "critical", ["gas_leak"])
    assert fire is not None and gas is not None and (fire.id, gas.id) == ("fire", "gas-leak")
    assert {s.phase for s in gas.steps} == set(Phase)


def _with_plan(step: dict[str, Any], **plan_fields: Any) -> dict[str, Any]:
    one = {"id": "p", "name": "P", "name_zh": "预案", "category": "fire_safety", "steps": [step]} | plan_fields
    return {"city": {"code": "110000", "name": "c"}, "plans": [one]}


STEP = {"name": "notify", "phase": "warn", "force": "fire", "within": "5m"}


@pytest.mark.parametrize(
    ("step", "plan_fields", "path", "word", "closest"),
    [
        (STEP | {"force": None, "role": "grid_workr"}, {}, "plans.0.steps.0.role", "grid_workr", "grid_worker"),
        (STEP | {"force": "polcie"}, {}, "plans.0.steps.0.force", "polcie", "police"),
        (STEP | {"phase": "recovery"}, {}, "plans.0.steps.0.phase", "recovery", "recover"),
        (STEP, {"category": "fire"}, "plans.0.category", "fire", "fire_safety"),
        (STEP, {"event_types": ["gasleak"]}, "plans.0.event_types.0", "gasleak", "gas_leak"),
        (STEP, {"severity": "critcal"}, "plans.0.severity", "critcal", "critical"),
    ],
)
def test_unknown_words_are_refused_at_load_with_the_closest(
    step: dict[str, Any], plan_fields: dict[str, Any], path: str, word: str, closest: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(_with_plan(step, **plan_fields))
    assert refused.value.path == path
    assert repr(word) in refused.value.message and f"did you mean {closest!r}" in refused.value.message


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (STEP | {"role": "supervisor"}, "either a role or a force"),
        ({k: v for k, v in STEP.items() if k != "force"}, "either a role or a force"),
        (STEP | {"within": "soon"}, "30m, 4h or 2d"),
    ],
)
def test_nonsense_steps_are_refused(step: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(_with_plan(step))
    assert message in refused.value.message


def test_a_step_or_plan_named_twice_is_refused() -> None:
    twice = _with_plan(STEP)
    twice["plans"][0]["steps"].append(STEP)
    with pytest.raises(ConfigError, match="step names must be unique: notify"):
        parse_config(twice)
    twice = _with_plan(STEP)
    twice["plans"].append(twice["plans"][0])
    with pytest.raises(ConfigError, match="plan ids must be unique: p"):
        parse_config(twice)
