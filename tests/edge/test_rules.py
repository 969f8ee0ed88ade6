"""Local threshold rules: duration, hysteresis, pairing -- property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.rules import RuleEngine, ThresholdRule
from edge.wire import EventState

values = st.lists(st.floats(min_value=-100, max_value=200, allow_nan=False), max_size=60)


def feed(engine: RuleEngine, readings: list[float], step_ms: int = 1000) -> list[tuple[int, EventState]]:
    out = []
    for i, value in enumerate(readings):
        for t in engine.evaluate({"temp": value}, 1_000_000 + i * step_ms):
            out.append((i, t.state))
    return out


@given(values)
def test_transitions_alternate_starting_with_active(readings: list[float]) -> None:
    engine = RuleEngine([ThresholdRule("temp", "overheat", above=60, clear_below=50, for_s=2, clear_for_s=1)])
    states = [s for _, s in feed(engine, readings)]
    for i, state in enumerate(states):
        assert state is (EventState.ACTIVE if i % 2 == 0 else EventState.CLEARED)


@given(values)
def test_without_delays_state_follows_threshold(readings: list[float]) -> None:
    engine = RuleEngine([ThresholdRule("temp", "overheat", above=60)])
    for i, value in enumerate(readings):
        engine.evaluate({"temp": value}, 1_000_000 + i)
        assert bool(engine.active()) == (value > 60)


@given(st.integers(0, 2), st.floats(61, 200))
def test_breach_shorter_than_for_s_never_raises(length: int, value: float) -> None:
    engine = RuleEngine([ThresholdRule("temp", "overheat", above=60, for_s=3)])
    # readings 1 s apart: a breach lasting `length` seconds (< 3) then a normal reading
    assert feed(engine, [value] * (length + 1) + [20.0]) == []


def test_raises_after_for_s_and_clears_after_clear_for_s() -> None:
    engine = RuleEngine([ThresholdRule("temp", "overheat", above=60, for_s=2, clear_below=50, clear_for_s=2)])
    assert feed(engine, [70, 70, 70, 55, 55, 45, 45, 45]) == [(2, EventState.ACTIVE), (7, EventState.CLEARED)]


@given(st.lists(st.floats(50.5, 60), min_size=1, max_size=30))
def test_hysteresis_band_never_clears(band: list[float]) -> None:
    engine = RuleEngine([ThresholdRule("temp", "overheat", above=60, clear_below=50)])
    assert feed(engine, [80, *band]) == [(0, EventState.ACTIVE)]


def test_below_rule_and_event_id_pairing() -> None:
    engine = RuleEngine([ThresholdRule("paper", "paper_low", below=10, clear_above=20)])
    raised = engine.evaluate({"paper": 5}, 1000)
    assert raised[0].state is EventState.ACTIVE
    assert engine.evaluate({"paper": 15}, 2000) == []
    cleared = engine.evaluate({"paper": 25}, 3000)
    assert cleared[0].state is EventState.CLEARED
    assert cleared[0].event_id == raised[0].event_id
    again = engine.evaluate({"paper": 1}, 4000)
    assert again[0].event_id != raised[0].event_id


def test_missing_metric_changes_nothing() -> None:
    engine = RuleEngine([ThresholdRule("temp", "overheat", above=60)])
    engine.evaluate({"temp": 70}, 1000)
    assert engine.evaluate({"other": 1}, 2000) == []
    assert engine.active()


def test_rule_needs_one_direction() -> None:
    with pytest.raises(ValueError):
        ThresholdRule("temp", "x")
