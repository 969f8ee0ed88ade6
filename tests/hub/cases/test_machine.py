"""The pure case machine: the happy loop, refusals, and hypothesis over random action sequences."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.cases.machine import TERMINAL, Action, CaseFacts, Command, State, TransitionError, allowed_actions, apply

PEOPLE = ["op1", "w1", "f1", "sup1", "r1"]


def run(facts: CaseFacts, action: str, actor: str, **params: Any) -> CaseFacts:
    return apply(facts, Command(action, actor, params))


def test_full_loop_with_rework() -> None:
    f = run(CaseFacts(), "register", "op1")
    f = run(f, "dispatch", "op1", assignees=["w1", "f1"])
    f = run(f, "accept", "f1")
    assert f.handler_id == "f1"
    f = run(f, "handle", "f1")
    f = run(f, "pause", "f1")
    with pytest.raises(TransitionError) as info:
        run(f, "feedback", "f1")
    assert info.value.reason == "paused"
    f = run(run(f, "resume", "f1"), "feedback", "f1")
    f = run(f, "verify", "sup1", result="fail")
    assert (f.state, f.rework_count) == (State.HANDLING, 1)
    f = run(run(f, "feedback", "f1"), "verify", "sup1", result="pass")
    f = run(run(f, "close", "sup1"), "evaluate", "r1", satisfaction=5)
    assert f.state == State.EVALUATED and f.satisfaction == 5
    assert allowed_actions(f) == []


def test_handler_cannot_verify_and_illegal_moves_carry_reasons() -> None:
    f = run(
        run(run(run(CaseFacts(), "register", "op1"), "dispatch", "op1", assignees=["w1"]), "accept", "w1"),
        "handle",
        "w1",
    )
    f = run(f, "feedback", "w1")
    with pytest.raises(TransitionError) as info:
        run(f, "verify", "w1", result="pass")
    assert info.value.reason == "verifier_is_handler"
    with pytest.raises(TransitionError) as info:
        run(CaseFacts(), "close", "sup1")
    assert (info.value.reason, info.value.state) == ("illegal_transition", State.REPORTED)
    with pytest.raises(TransitionError) as info:
        run(CaseFacts(), "cancel", "op1")
    assert info.value.reason == "reason_required"
    with pytest.raises(TransitionError) as info:
        run(CaseFacts(), "fly", "op1")
    assert info.value.reason == "unknown_action"


def test_return_and_redispatch() -> None:
    f = run(run(CaseFacts(), "register", "op1"), "dispatch", "op1", assignees=["w1"])
    with pytest.raises(TransitionError) as info:
        run(f, "accept", "w2")
    assert info.value.reason == "not_assignee"
    f = run(f, "return", "w1", reason="not my grid")
    assert f.state == State.RETURNED and not f.assignees
    f = run(f, "dispatch", "op1", assignees=["w2"])
    assert run(f, "accept", "w2").handler_id == "w2"


actions = st.sampled_from([a.value for a in Action])
param_sets = st.sampled_from(
    [
        {},
        {"assignees": ["w1", "f1"]},
        {"assignees": ["w1"]},
        {"result": "pass"},
        {"result": "fail"},
        {"reason": "duplicate"},
        {"into": 7},
        {"satisfaction": 4},
        {"satisfaction": 9},
    ]
)
steps = st.lists(st.tuples(actions, st.sampled_from(PEOPLE), param_sets), max_size=40)
HANDLED = {State.ACCEPTED, State.HANDLING, State.FEEDBACK, State.VERIFIED, State.CLOSED, State.EVALUATED}


def check_invariants(f: CaseFacts) -> None:
    if f.state in HANDLED:
        assert f.handler_id is not None and f.handler_id in f.assignees
    if f.state in {State.VERIFIED, State.CLOSED, State.EVALUATED}:
        assert f.verified_by is not None and f.verified_by != f.handler_id
    assert (f.state == State.EVALUATED) == (f.satisfaction is not None)
    assert (f.state == State.MERGED) == (f.merged_into is not None)
    assert not f.paused or f.state == State.HANDLING
    assert f.rework_count >= 0


@settings(max_examples=150, deadline=None)
@given(steps)
def test_no_action_sequence_reaches_an_illegal_state(seq: list[tuple[str, str, dict[str, Any]]]) -> None:
    f = CaseFacts()
    fails = 0
    for action, actor, params in seq:
        before = f
        if f.state == State.FEEDBACK and f.handler_id is not None:
            with pytest.raises(TransitionError):
                run(f, "verify", f.handler_id, result="pass")
        try:
            f = run(f, action, actor, **params)
        except TransitionError as exc:
            assert exc.reason and exc.state == before.state
            assert f == before
            continue
        assert before.state not in TERMINAL, "terminal states take no action"
        if action == "verify" and params.get("result") == "fail":
            fails += 1
        check_invariants(f)
    assert f.rework_count == fails


PARAMS_FOR: dict[str, list[dict[str, Any]]] = {
    "dispatch": [{"assignees": ["w1", "f1"]}, {"assignees": ["w1"]}],
    "verify": [{"result": "pass"}, {"result": "fail"}],
    "return": [{"reason": "wrong grid"}],
    "cancel": [{"reason": "duplicate"}],
    "merge": [{"into": 3}],
    "evaluate": [{"satisfaction": 1}, {"satisfaction": 5}],
}


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_guided_walks_keep_invariants(data: st.DataObject) -> None:
    f = CaseFacts()
    for _ in range(data.draw(st.integers(1, 40))):
        options = allowed_actions(f)
        if not options:
            assert f.state in TERMINAL
            break
        action = data.draw(st.sampled_from(options))
        actor = data.draw(st.sampled_from(sorted(f.assignees) or PEOPLE))
        if action in {"handle", "pause", "resume", "feedback"} and f.handler_id:
            actor = f.handler_id
        params = data.draw(st.sampled_from(PARAMS_FOR.get(action, [{}])))
        if action == "verify" and f.handler_id is not None:
            with pytest.raises(TransitionError):
                run(f, action, f.handler_id, **params)
            actor = "sup1"
        try:
            f = run(f, action, actor, **params)
        except TransitionError as exc:
            assert exc.reason in {"paused", "already_paused", "not_paused"}
            continue
        check_invariants(f)
