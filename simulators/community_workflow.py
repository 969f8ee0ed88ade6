"""Export a generated community's grids, forces and people as the hub's case workflow YAML.

The hub's ``hub.cases.loader`` reads city, areas (district 6, street 9, community 12
and unit grid 15 digits), forces (id, name, kind), people (roles, force,
responsibilities) and category routing. :func:`to_workflow` derives exactly that
from a :class:`~simulators.community.Community`, so one seeded community drives
both the simulated devices and the case flow. Time limits: the categories the vocabulary
marks ``around_the_clock`` (fire safety, public security) and every critical case run on
an around-the-clock calendar, routine work keeps the loader's default limits on office hours.
Emergency plans are the packaged example's (fire, gas leak), and each unit grid has a
resident who may report through the resident page.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from hub.cases.plugin import example_config
from simulators.community import FORCE_KEYS, Community

#: Named calendars of the case workflow: emergencies never wait for Monday.
CALENDARS: Final[dict[str, dict[str, Any]]] = {
    "always": {"around_the_clock": True},
    "office": {"hours": [["09:00", "12:00"], ["13:30", "18:00"]], "weekend": [5, 6]},
}
#: SLA rules (most specific wins); categories and severities without one keep the
#: loader's default limits on the default (office) calendar.
SLA_RULES: Final[list[dict[str, str]]] = [
    {"category": "fire_safety", "calendar": "always", "dispatch": "15m", "accept": "30m", "handle": "4h"},
    {
        "category": "fire_safety",
        "severity": "critical",
        "calendar": "always",
        "dispatch": "5m",
        "accept": "10m",
        "handle": "2h",
    },
    {"category": "public_security", "calendar": "always", "dispatch": "30m", "accept": "1h", "handle": "8h"},
    {"category": "*", "severity": "critical", "calendar": "always", "dispatch": "1h", "accept": "2h", "handle": "2d"},
]


def residents(community: Community) -> list[dict[str, Any]]:
    """One resident per unit grid (``res-001``, ...), who may report through Open311 and the resident page."""
    return [
        {"id": f"res-{n:03d}", "name": f"Resident of {grid.name}", "roles": ["resident"]}
        for n, grid in enumerate(community.grids, start=1)
    ]


def to_workflow(community: Community) -> dict[str, Any]:
    """The grids, forces and people in the case workflow schema of ``hub.cases.loader`` (city, grids, ...)."""
    info = community.community
    code = str(info["code"])
    lon0, lat0, lon1, lat1 = info["bbox"]
    box = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1]]
    households = sum(g.households for g in community.grids)
    population = sum(g.population for g in community.grids)
    areas: list[dict[str, Any]] = [
        {"code": info["district"]["code"], "name": info["district"]["name"]},
        {"code": info["street"]["code"], "name": info["street"]["name"]},
        {"code": code, "name": info["name"], "households": households, "population": population, "polygon": box},
    ]
    areas += [
        {
            "code": g.code,
            "name": g.name,
            "households": g.households,
            "population": g.population,
            "polygon": [list(p) for p in g.polygon],
        }
        for g in community.grids
    ]
    people = residents(community)
    for p in community.people:
        entry: dict[str, Any] = {"id": p.id, "name": p.name, "roles": [p.role]}
        if p.force is not None:
            entry["force"] = p.force
        entry["responsibilities"] = [{"grids": list(p.grids) or [code], "categories": list(p.categories) or ["*"]}]
        people.append(entry)
    return {
        "city": dict(info.get("city") or {"code": f"{code[:4]}00", "name": "Demo City"}),
        "grids": areas,
        "forces": [{"id": f.key, "name": f.name, "kind": FORCE_KEYS[f.key].value} for f in community.forces],
        "people": people,
        "routing": {cat: f.key for f in community.forces for cat in f.categories},
        "default_calendar": "office",
        "calendars": {name: dict(conf) for name, conf in CALENDARS.items()},
        "sla": [dict(rule) for rule in SLA_RULES],
        "plans": [plan.model_dump(exclude_defaults=True) for plan in example_config().plans],
    }


def to_district_workflow(communities: Sequence[Community]) -> dict[str, Any]:
    """The case workflow of several communities on one hub (e.g. :func:`~simulators.community.generate_district`).

    Areas are merged by code; a person who appears in several communities (the district's
    supervisor, the operator) answers for the union of their areas there.
    """
    if not communities:
        raise ValueError("no communities to merge")
    merged = to_workflow(communities[0])
    areas = {a["code"]: a for a in merged["grids"]}
    people = {p["id"]: p for p in merged["people"]}
    for community in communities[1:]:
        other = to_workflow(community)
        for area in other["grids"]:
            areas.setdefault(area["code"], area)
        for person in other["people"]:
            known = people.setdefault(person["id"], person)
            # one person across streets gains the areas; residents (res-001 is grid 001's in either
            # community) have none and keep the first community's entry
            if known is not person and "responsibilities" in known and "responsibilities" in person:
                grids = known["responsibilities"][0]["grids"]
                grids += [g for g in person["responsibilities"][0]["grids"] if g not in grids]
    merged["grids"] = sorted(areas.values(), key=lambda a: a["code"])
    merged["people"] = list(people.values())
    return merged


def write_workflow(path: str | Path, community: Community | Sequence[Community]) -> Path:
    """Write :func:`to_workflow` (or, for several communities, :func:`to_district_workflow`) as YAML."""
    doc = to_workflow(community) if isinstance(community, Community) else to_district_workflow(community)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120))
    return target
