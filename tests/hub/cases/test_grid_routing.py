"""Grid model, YAML loader, routing (属地兜底) and escalation, all pure."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.cases.escalation import due_level, step
from hub.cases.grid import GridError, ancestors, code_level, parent_code, point_in_polygon
from hub.cases.loader import ConfigError, build_model, load_file, load_yaml
from hub.cases.routing import RoutingError, route

EXAMPLE = Path(__file__).parents[3] / "hub" / "cases" / "example.yaml"
MODEL = build_model(load_file(EXAMPLE))


def test_codes_and_ancestors() -> None:
    assert code_level("110105001001001") == "grid"
    assert parent_code("110105001001001") == "110105001001"
    assert parent_code("110105") is None
    assert ancestors("110105001001001") == ["110105001001001", "110105001001", "110105001", "110105"]
    for bad in ("11010500100100", "11010500100100x", "110105001001000"):
        with pytest.raises(GridError):
            code_level(bad)


def test_polygon_lookup() -> None:
    square = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    assert point_in_polygon(0.5, 0.5, square)
    assert not point_in_polygon(1.5, 0.5, square)
    area = MODEL.locate(116.455, 39.91)
    assert area is not None and area.code == "110105001001003"
    assert MODEL.locate(100.0, 10.0) is None


def test_routing_owner_force_and_community_fallback() -> None:
    r = route(MODEL, "110105001001001", "fire_safety")
    assert (r.worker_id, r.force_id, r.force_member_id, r.fallback) == ("w1", "fire", "f1", False)
    r = route(MODEL, "110105001001003", "environment_sanitation")  # no grid worker: the community takes it
    assert (r.worker_id, r.force_id, r.fallback) == ("cw", "urban", True)
    r = route(MODEL, "110105001001002", "general")  # no force owns it: community keeps it
    assert (r.worker_id, r.force_id, r.fallback) == ("w2", None, True)
    with pytest.raises(RoutingError):
        route(MODEL, "110105001001009", "fire_safety")


def test_loader_names_the_key_path() -> None:
    base = EXAMPLE.read_text()
    with pytest.raises(ConfigError) as info:
        load_yaml(base.replace("roles: [resident]", "roles: [mayor]"))
    assert info.value.path == "people.13.roles.0"  # r1, after the maintenance technician
    with pytest.raises(ConfigError) as info:
        load_yaml(base + "\nextra_key: 1\n")
    assert info.value.path == "extra_key"
    with pytest.raises(ConfigError) as info:
        build_model(load_yaml(base.replace("fire_safety: fire", "fire_safety: brigade")))
    assert info.value.path == "routing.fire_safety"
    with pytest.raises(ConfigError) as info:
        build_model(load_yaml(base.replace('{code: "110105001", name', '{code: "110105009", name')))
    assert info.value.path.startswith("grids.110105001001")


def test_escalation_climbs_to_the_city() -> None:
    limit = timedelta(hours=2)
    assert [due_level(limit * k, limit) for k in (0.5, 1, 1.5, 2.5, 3.5, 10)] == [0, 0, 1, 2, 3, 3]
    street = step(MODEL, "110105001001001", 1, "fire_safety")
    assert (street.level_name, street.area_code) == ("street", "110105001")
    assert "sup2" in street.notify and "sup1" not in street.notify
    city = step(MODEL, "110105001001001", 3, "fire_safety")
    assert (city.area_code, city.notify) == ("110000", ("admin1",))


@given(st.integers(0, 10_000), st.integers(1, 1000))
def test_escalation_level_is_monotonic(spent: int, limit: int) -> None:
    a = due_level(timedelta(minutes=spent), timedelta(minutes=limit))
    b = due_level(timedelta(minutes=spent + 1), timedelta(minutes=limit))
    assert 0 <= a <= b <= 3
