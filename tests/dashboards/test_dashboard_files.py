"""Grafana files: generated output is current, ids unique, layout sane, datasource uids match."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

DASHBOARDS = Path(__file__).parents[2] / "dashboards"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gs_dashboards_generate", DASHBOARDS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((DASHBOARDS / "json").glob("*.json"))]


def test_committed_files_match_the_generator() -> None:
    for path, text in load_generator().render().items():
        assert path.exists(), f"{path} missing: run python dashboards/generate.py"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run python dashboards/generate.py"


def test_expected_dashboards_exist() -> None:
    titles = {d["uid"] for d in dashboards()}
    assert titles == {
        "gridsentinel-overview",
        "gridsentinel-device-health",
        "gridsentinel-sensors",
        "gridsentinel-kiosks",
        "gridsentinel-cameras",
        "gridsentinel-incidents",
    }


def test_uids_and_panel_ids_unique() -> None:
    uids = [d["uid"] for d in dashboards()]
    assert len(uids) == len(set(uids))
    for dash in dashboards():
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), dash["uid"]


def cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
    pos = panel["gridPos"]
    return {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}


@pytest.mark.parametrize("dash", dashboards(), ids=lambda d: d["uid"])
def test_no_overlapping_panels_and_within_24_columns(dash: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        mine = cells(panel)
        assert not (mine & taken), f"{panel['title']} overlaps another panel"
        taken |= mine


def test_datasource_uids_match_provisioning() -> None:
    prov = yaml.safe_load((DASHBOARDS / "provisioning" / "datasources" / "gridsentinel.yaml").read_text())
    uids = {ds["uid"] for ds in prov["datasources"]}
    assert len(uids) == 1
    for dash in dashboards():
        refs = [p["datasource"]["uid"] for p in dash["panels"]]
        refs += [t["datasource"]["uid"] for p in dash["panels"] for t in p["targets"]]
        refs += [v["datasource"]["uid"] for v in dash["templating"]["list"]]
        refs += [a["datasource"]["uid"] for a in dash["annotations"]["list"]]
        assert set(refs) == uids, dash["uid"]


def test_every_query_is_influxql_with_a_time_bound() -> None:
    for dash in dashboards():
        for panel in dash["panels"]:
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                query = target["query"]
                assert re.match(r"^SELECT ", query), query
                # The dashboard range, or a fixed look-back for the "current state" panels.
                assert "$timeFilter" in query or re.search(r"time > now\(\) - \d+[smhdw]\b", query), query


def outer_query(query: str) -> str:
    """``query`` without its subquery (the text inside ``FROM ( ... )``)."""
    start = query.find("FROM (")
    if start < 0:
        return query
    depth = 0
    for i in range(start + len("FROM "), len(query)):
        depth += {"(": 1, ")": -1}.get(query[i], 0)
        if depth == 0:
            return query[:start] + query[i + 1 :]
    raise AssertionError(f"unbalanced parentheses: {query}")


def test_aliases_name_tags_the_query_groups_by() -> None:
    for dash in dashboards():
        for panel in dash["panels"]:
            for target in panel["targets"]:
                _, _, group_by = outer_query(target["query"]).partition("GROUP BY")
                for tag in re.findall(r"\$tag_(\w+)", target["alias"]):
                    assert f'"{tag}"' in group_by, (panel["title"], tag)


def test_every_dashboard_has_the_grid_variable_and_incident_annotations() -> None:
    for dash in dashboards():
        assert [v["name"] for v in dash["templating"]["list"]] == ["grid"], dash["uid"]
        assert [a["name"] for a in dash["annotations"]["list"]] == ["Incidents"], dash["uid"]
