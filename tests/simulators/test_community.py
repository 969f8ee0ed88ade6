"""Community generator: valid unique grid codes, tiling polygons, devices in grids, YAML round trip."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import parse_config
from edge.wire import is_valid_grid, is_valid_id
from hub.cases.loader import build_model, load_file
from simulators.community import (
    FORCES,
    CommunityError,
    agent_config,
    generate_community,
    load_community,
    to_dict,
    write_community,
)
from simulators.community_workflow import residents, write_workflow


def _box(polygon: tuple[tuple[float, float], ...]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    return min(xs), min(ys), max(xs), max(ys)


@pytest.mark.parametrize("n", [1, 7, 10, 37])
def test_grids_codes_and_polygons(n: int) -> None:
    community = generate_community(n, seed=3)
    codes = community.grid_codes()
    assert len(codes) == n == len(set(codes))
    assert all(is_valid_grid(c) and c.startswith(community.community["code"]) for c in codes)
    assert [int(c[-3:]) for c in codes] == list(range(1, n + 1))
    boxes = [_box(g.polygon) for g in community.grids]
    for (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) in itertools.combinations(boxes, 2):
        overlap_w = min(ax1, bx1) - max(ax0, bx0)
        overlap_h = min(ay1, by1) - max(ay0, by0)
        assert overlap_w <= 1e-9 or overlap_h <= 1e-9  # touching edges at most
    lon0, lat0, lon1, lat1 = community.community["bbox"]
    assert all(lon0 <= x0 < x1 <= lon1 + 1e-9 and lat0 <= y0 < y1 <= lat1 + 1e-9 for x0, y0, x1, y1 in boxes)


def test_devices_and_people_reference_real_grids() -> None:
    community = generate_community(12, seed=8)
    codes = set(community.grid_codes())
    ids = [d["device"]["id"] for d in community.devices]
    assert len(ids) == len(set(ids)) and all(is_valid_id(i) for i in ids)
    assert all(d["device"]["grid"] in codes for d in community.devices)
    kinds = {d["device"]["kind"] for d in community.devices}
    assert kinds == {"camera", "kiosk", "sensor"}
    profiles = {d["drivers"][0]["profile"] for d in community.devices if d["device"]["kind"] == "sensor"}
    assert len(profiles) >= 5
    workers = [p for p in community.people if p.role == "grid_worker"]
    assert sorted(g for w in workers for g in w.grids) == sorted(codes)  # one worker per grid
    for key in FORCES:
        members = [p for p in community.people if p.force == key]
        assert members and set().union(*(m.grids for m in members)) == codes  # every grid covered by every force
    assert [p.role for p in community.people].count("operator") == 1
    assert any(p.role == "supervisor" for p in community.people)


def test_deterministic_for_a_seed() -> None:
    assert to_dict(generate_community(9, seed=5)) == to_dict(generate_community(9, seed=5))
    assert to_dict(generate_community(9, seed=5)) != to_dict(generate_community(9, seed=6))


def test_round_trip(tmp_path: Path) -> None:
    community = generate_community(15, seed=11)
    path = write_community(tmp_path / "c" / "community.yaml", community)
    assert load_community(path) == community
    text = path.read_text()
    assert "'330106001001015'" in text  # grid codes stay strings (a YAML int would lose leading zeros)


def test_device_entries_are_valid_agent_configs() -> None:
    pytest.importorskip("cv2")

    community = generate_community(3, seed=2)
    for entry in community.devices:
        config = parse_config(agent_config(entry, "mqtt://127.0.0.1:1883"))
        assert config.device.id == entry["device"]["id"]
        assert config.device.grid == entry["device"]["grid"]


def test_workflow_export_loads_in_the_hub_case_model(tmp_path: Path) -> None:
    community = generate_community(6, seed=4)
    path = write_workflow(tmp_path / "cases.yaml", community)
    model = build_model(load_file(path))
    assert sorted(a.code for a in model.unit_grids()) == community.grid_codes()
    assert model.routes["fire_safety"] == "fire" and model.routes["kiosk_service"] == "service_it"
    assert {p.id for p in community.people} | {r["id"] for r in residents(community)} == set(model.people)
    assert [plan.id for plan in load_file(path).plans] == ["fire", "gas-leak"]
    grid = community.grids[2]
    lon = (grid.polygon[0][0] + grid.polygon[1][0]) / 2
    lat = (grid.polygon[0][1] + grid.polygon[2][1]) / 2
    located = model.locate(lon, lat)
    assert located is not None and located.code == grid.code


def _doc(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    path = write_community(tmp_path / "c.yaml", generate_community(3, seed=1))
    return path, yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["grids"][1].update(code=d["grids"][0]["code"]), "grids[1].code"),
        (lambda d: d["grids"][0].update(code="12345"), "grids[0].code"),
        (lambda d: d["devices"][0]["device"].update(grid="330106001001999"), "devices[0].device.grid"),
        (lambda d: d["people"][0].update(role="king"), "people[0].role"),
        (lambda d: d["people"][0].update(grids=["nope"]), "people[0].grids"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["community"].update(code="33"), "community.code"),
    ],
)
def test_load_errors_name_the_path(tmp_path: Path, mutate: Any, where: str) -> None:
    path, doc = _doc(tmp_path)
    mutate(doc)
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(CommunityError) as info:
        load_community(path)
    assert info.value.path == where


def test_generate_refuses_nonsense() -> None:
    with pytest.raises(CommunityError, match="grids"):
        generate_community(0)
    with pytest.raises(CommunityError, match="unknown device kinds"):
        generate_community(2, mix_per_grid={"toaster": 1})
