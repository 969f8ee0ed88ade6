"""Partition planning: fair shares, claims in rendezvous order, extras given back (pure, no engine)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.cluster.plan import fair_share, plan, rendezvous_order


def test_fair_share_rounds_up() -> None:
    assert [fair_share(12, n) for n in (0, 1, 2, 3, 5, 12, 20)] == [12, 12, 6, 4, 3, 1, 1]


def test_a_lone_replica_claims_everything_free() -> None:
    step = plan("r0", 12, set(), set(range(12)), 1)
    assert sorted(step.claim) == list(range(12)) and step.release == ()


def test_a_replica_joining_makes_the_owner_give_back_its_extras() -> None:
    step = plan("r0", 12, set(range(12)), set(), 3)
    assert len(step.release) == 8 and step.claim == ()


def test_survivors_claim_a_dead_replicas_partitions() -> None:
    owned = {0, 1, 2, 3}
    step = plan("r1", 12, owned, {8, 9, 10, 11}, 2)
    assert sorted(step.claim) == [8, 9] or len(step.claim) == 2
    assert set(step.claim) <= {8, 9, 10, 11}


def test_two_replicas_prefer_different_partitions() -> None:
    free = set(range(12))
    a = rendezvous_order("replica-a", free)[:6]
    b = rendezvous_order("replica-b", free)[:6]
    assert len(set(a) & set(b)) < 6


@given(
    st.integers(1, 64),
    st.sets(st.integers(0, 63)),
    st.sets(st.integers(0, 63)),
    st.integers(1, 10),
)
def test_plan_never_exceeds_the_share_nor_claims_what_is_not_free(
    partitions: int, owned: set[int], free: set[int], members: int
) -> None:
    owned = {p for p in owned if p < partitions}
    free = {p for p in free if p < partitions} - owned
    step = plan("r", partitions, owned, free, members)
    share = fair_share(partitions, members)
    assert set(step.claim) <= free and set(step.release) <= owned
    assert not (step.claim and step.release)
    assert len(owned) + len(step.claim) - len(step.release) <= max(share, len(owned) - len(step.release))
    if len(owned) > share:
        assert len(owned) - len(step.release) == share
