"""The subscription registry: plain and shared subscriptions (pure, no server)."""

from __future__ import annotations

from hub.broker.session import Session
from hub.broker.subscriptions import SubscriptionRegistry


def sessions(*ids: str, offline: tuple[str, ...] = ()) -> dict[str, Session]:
    out = {}
    for client_id in ids:
        session = Session(client_id, False, 10, 10)
        if client_id not in offline:
            session.output = object()  # type: ignore[assignment]  # only .online is read
        out[client_id] = session
    return out


def test_overlapping_plain_subscriptions_give_one_copy_at_max_qos() -> None:
    registry = SubscriptionRegistry()
    registry.add("a", "x/#", 0)
    registry.add("a", "x/+", 2)
    registry.add("b", "x/y", 1)
    assert sorted(registry.targets("x/y", sessions("a", "b"))) == [("a", 2), ("b", 1)]


def test_shared_group_round_robin_one_member_per_message() -> None:
    registry = SubscriptionRegistry()
    for member in ("m1", "m2", "m3"):
        registry.add(member, "$share/g/t/#", 1)
    registry.add("other", "$share/h/t/#", 0)
    known = sessions("m1", "m2", "m3", "other")
    picks = [registry.targets("t/1", known) for _ in range(6)]
    assert [p[0][0] for p in picks] == ["m1", "m2", "m3", "m1", "m2", "m3"]
    assert all(p[1] == ("other", 0) for p in picks)


def test_shared_group_prefers_connected_members() -> None:
    registry = SubscriptionRegistry()
    for member in ("m1", "m2", "m3"):
        registry.add(member, "$share/g/t", 1)
    known = sessions("m1", "m2", "m3", offline=("m2",))
    assert [registry.targets("t", known)[0][0] for _ in range(4)] == ["m1", "m3", "m1", "m3"]


def test_remove_prunes_empty_filters_and_groups() -> None:
    registry = SubscriptionRegistry()
    registry.add("a", "$share/g/t", 1)
    registry.add("b", "t", 1)
    registry.remove("a", "$share/g/t")
    assert registry.targets("t", sessions("a", "b")) == [("b", 1)]
    registry.remove("b", "t")
    assert len(registry) == 0
    registry.remove("b", "t")  # absent: no-op


def test_match_cache_sees_new_and_removed_subscriptions() -> None:
    registry = SubscriptionRegistry()
    known = sessions("a", "b")
    assert registry.targets("t/1", known) == []
    registry.add("a", "t/+", 1)
    assert registry.targets("t/1", known) == [("a", 1)]
    registry.add("b", "t/#", 0)
    assert sorted(registry.targets("t/1", known)) == [("a", 1), ("b", 0)]
    registry.remove("a", "t/+")
    assert registry.targets("t/1", known) == [("b", 0)]
