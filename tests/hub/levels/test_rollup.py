"""The pure roll-up over the grid-code hierarchy: children, top areas, counts, breadcrumbs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.levels.rollup import Fact, FactKind, ancestors_in, child_codes, rollup, top_codes

DISTRICT = "330106"
STREET_1, STREET_2 = "330106001", "330106002"
COMM_1, COMM_2 = "330106001001", "330106002001"
KNOWN = [DISTRICT, STREET_1, STREET_2, COMM_1, COMM_2, f"{COMM_1}001", f"{COMM_1}002", f"{COMM_2}001", "330107"]


def test_children_one_level_down() -> None:
    assert child_codes(None, KNOWN) == [DISTRICT, "330107"]
    assert child_codes(DISTRICT, KNOWN) == [STREET_1, STREET_2]
    assert child_codes(STREET_1, KNOWN) == [COMM_1]
    assert child_codes(COMM_1, KNOWN) == [f"{COMM_1}001", f"{COMM_1}002"]
    assert child_codes(f"{COMM_1}001", KNOWN) == []  # a unit grid is the bottom


def test_top_codes_drop_areas_inside_others() -> None:
    assert top_codes([f"{COMM_1}001", STREET_1, STREET_2]) == [STREET_1, STREET_2]
    assert top_codes([]) == []


def test_counts_roll_up_by_prefix() -> None:
    facts = [
        Fact(FactKind.DEVICE, f"{COMM_1}001"),
        Fact(FactKind.DEVICE, f"{COMM_1}002", flag=True),
        Fact(FactKind.DEVICE, f"{COMM_2}001", flag=True),
        Fact(FactKind.DEVICE, None, flag=True),  # no grid: counted nowhere
        Fact(FactKind.ALARM, f"{COMM_2}001"),
        Fact(FactKind.CASE, f"{COMM_1}001"),
        Fact(FactKind.CASE, f"{COMM_2}001", flag=True),
    ]
    names = {STREET_1: "Lingyin Street"}
    district, s1, s2 = rollup([DISTRICT, STREET_1, STREET_2], names, facts)
    assert (district.devices, district.devices_down, district.active_alarms, district.open_cases, district.overdue) == (
        3, 2, 1, 2, 1,
    )  # fmt: skip
    assert (s1.name, s1.level, s1.devices, s1.devices_down, s1.active_alarms, s1.open_cases, s1.overdue) == (
        "Lingyin Street", "street", 2, 1, 0, 1, 0,
    )  # fmt: skip
    assert (s2.name, s2.devices_down, s2.active_alarms, s2.overdue) == (STREET_2, 1, 1, 1)


def test_breadcrumb_keeps_only_allowed_ancestors() -> None:
    assert ancestors_in(COMM_1, KNOWN) == [DISTRICT, STREET_1, COMM_1]
    assert ancestors_in(COMM_1, [STREET_1, COMM_1]) == [STREET_1, COMM_1]  # a street supervisor's path


grid_codes = st.sampled_from([f"{COMM_1}001", f"{COMM_1}002", f"{COMM_2}001", "330107001001001", None])


@given(st.lists(st.tuples(st.sampled_from(list(FactKind)), grid_codes, st.booleans()), max_size=40))
def test_children_add_up_to_their_parent(raw: list[tuple[FactKind, str | None, bool]]) -> None:
    facts = [Fact(k, g, f) for k, g, f in raw]
    parent, *children = rollup([DISTRICT, *child_codes(DISTRICT, KNOWN)], {}, facts)
    for field in ("devices", "devices_down", "active_alarms", "open_cases", "overdue"):
        assert getattr(parent, field) == sum(getattr(c, field) for c in children)
