"""Debounced event state machines: no storms from flickering input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.camera.events import DebouncedCondition, EventBoard, EventKey, Transition


def test_raises_only_after_hold_and_clears_only_after_hold() -> None:
    cond = DebouncedCondition(raise_after_s=2.0, clear_after_s=3.0)
    assert cond.update(0, True) is None
    assert cond.update(1_999, True) is None
    assert cond.update(2_000, True) is Transition.RAISED
    assert cond.active
    assert cond.update(5_000, False) is None
    assert cond.update(7_999, False) is None
    assert cond.update(8_000, False) is Transition.CLEARED
    assert not cond.active


def test_flickering_condition_never_raises() -> None:
    cond = DebouncedCondition(raise_after_s=2.0, clear_after_s=2.0)
    transitions = [cond.update(t, (t // 1000) % 2 == 0) for t in range(0, 60_000, 100)]
    assert [t for t in transitions if t is not None] == []


def test_flicker_while_active_does_not_clear() -> None:
    cond = DebouncedCondition(raise_after_s=0.0, clear_after_s=2.0)
    assert cond.update(0, True) is Transition.RAISED
    transitions = [cond.update(t, (t // 1000) % 2 == 0) for t in range(100, 60_000, 100)]
    assert [t for t in transitions if t is not None] == []
    assert cond.active


@given(st.lists(st.tuples(st.integers(1, 3_000), st.booleans()), max_size=200))
def test_transitions_alternate_and_respect_the_hold(steps: list[tuple[int, bool]]) -> None:
    cond = DebouncedCondition(raise_after_s=1.0, clear_after_s=1.0)
    now = 0
    last_change = 0
    expected = Transition.RAISED
    for delta, value in steps:
        now += delta
        result = cond.update(now, value)
        if result is not None:
            assert result is expected  # raised, cleared, raised... never twice the same
            expected = Transition.CLEARED if expected is Transition.RAISED else Transition.RAISED
            assert now - last_change >= 1_000
            last_change = now


def test_board_keeps_state_per_key_and_on_redefinition() -> None:
    board = EventBoard()
    a, b = EventKey("crowd_gathering", "gate"), EventKey("crowd_gathering", "square")
    board.define(a, 0.0, 0.0)
    board.define(b, 0.0, 0.0)
    assert board.update(a, 0, True) is Transition.RAISED
    assert board.is_active(a) and not board.is_active(b)
    board.define(a, 5.0, 5.0)
    assert board.is_active(a)
    assert board.active_keys() == [a]
