"""Pure dedup and gap tracking, with hypothesis over permutations and duplicates."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.ingest.dedup import SeqTracker, Verdict


@st.composite
def shuffled_with_dups(draw: st.DrawFn) -> tuple[int, list[int]]:
    n = draw(st.integers(0, 60))
    seqs = list(range(n + 1))
    seqs += draw(st.lists(st.sampled_from(seqs), max_size=40))
    return n, draw(st.permutations(seqs))


@settings(max_examples=300, deadline=None)
@given(shuffled_with_dups())
def test_any_permutation_with_duplicates_accepts_each_seq_once(case: tuple[int, list[int]]) -> None:
    n, seqs = case
    tracker = SeqTracker()
    accepted = [s for s in seqs if tracker.observe(s, 0).verdict is Verdict.ACCEPT]
    assert sorted(accepted) == list(range(n + 1))
    assert tracker.gaps == []


@settings(max_examples=300, deadline=None)
@given(shuffled_with_dups(), st.data())
def test_gaps_are_exactly_the_missing_seqs(case: tuple[int, list[int]], data: st.DataObject) -> None:
    n, seqs = case
    dropped = data.draw(st.sets(st.integers(0, n), max_size=n))
    sent = [s for s in seqs if s not in dropped]
    tracker = SeqTracker(expect_from=0)
    accepted = [s for s in sent if tracker.observe(s, 0).verdict is Verdict.ACCEPT]
    assert sorted(accepted) == sorted(set(sent))
    top = max(sent, default=-1)
    assert tracker.missing() == sorted(s for s in dropped if s <= top)


def test_gap_opened_filled_and_split() -> None:
    tracker = SeqTracker(expect_from=10)
    assert tracker.observe(10, 0).verdict is Verdict.ACCEPT
    obs = tracker.observe(15, 1)
    assert obs.opened == (11, 14)
    assert tracker.observe(12, 2).filled
    assert tracker.missing() == [11, 13, 14]
    assert tracker.observe(12, 3).verdict is Verdict.DUPLICATE
    assert tracker.observe(15, 3).verdict is Verdict.DUPLICATE


def test_declared_loss_closes_open_seqs_and_future_ones() -> None:
    tracker = SeqTracker(expect_from=0)
    tracker.observe(0, 0)
    tracker.observe(10, 0)  # gap 1..9
    assert tracker.declare_lost(3, 5) == [(3, 5)]
    assert tracker.missing() == [1, 2, 6, 7, 8, 9]
    assert tracker.declare_lost(20, 22) == [(20, 22)]  # ahead of anything seen
    assert tracker.missing() == [1, 2, 6, 7, 8, 9, *range(11, 20)]  # 11..19 still expected
    assert tracker.observe(23, 0).opened is None  # 20..22 were declared, not a gap
    assert tracker.observe(21, 0).verdict is Verdict.DUPLICATE


def test_expire_and_resend_bookkeeping() -> None:
    tracker = SeqTracker(expect_from=0)
    tracker.observe(5, 1000)  # gap 0..4 at t=1000
    assert tracker.due_for_resend(opened_before_ms=500, now_ms=1200) == []
    due = tracker.due_for_resend(opened_before_ms=1500, now_ms=1600)
    assert [(g.first, g.last, g.resend_ms) for g in due] == [(0, 4, 1600)]
    assert tracker.due_for_resend(opened_before_ms=1500, now_ms=1700) == []  # asked once only
    assert tracker.expire(older_than_ms=1000) == []
    assert [(g.first, g.last) for g in tracker.expire(older_than_ms=1001)] == [(0, 4)]
    assert tracker.observe(2, 2000).verdict is Verdict.DUPLICATE  # recorded as lost: a late copy is dropped


def test_restart_with_monotonic_seq_is_not_a_gap() -> None:
    tracker = SeqTracker()
    for seq in range(100, 105):
        tracker.observe(seq, 0)
    # device restarts (new epoch) and continues at 105
    assert tracker.observe(105, 0).opened is None
    assert tracker.gaps == []


def test_too_many_gaps_overflow_into_loss() -> None:
    tracker = SeqTracker(expect_from=0, max_gaps=3)
    for seq in range(0, 20, 2):  # every odd seq missing
        tracker.observe(seq, 0)
    assert len(tracker.gaps) == 3
    lost = tracker.expire(older_than_ms=-1)
    assert [(g.first, g.last) for g in lost] == [(1, 1), (3, 3), (5, 5), (7, 7), (9, 9), (11, 11)]


def test_seeded_tracker_drops_everything_below_its_start() -> None:
    tracker = SeqTracker(expect_from=100)  # resumed after a hub restart: 0..99 were handled
    assert tracker.observe(99, 0).verdict is Verdict.DUPLICATE
    assert tracker.observe(100, 0).verdict is Verdict.ACCEPT
    fresh = SeqTracker()  # first sight of a device: data sent before may still arrive late
    fresh.observe(100, 0)
    assert fresh.observe(99, 0).verdict is Verdict.ACCEPT
    assert fresh.observe(99, 0).verdict is Verdict.DUPLICATE
