"""A seeded community generator: grids, devices and people as one YAML file.

``generate_community(grids=N, seed=S)`` builds a :class:`Community`;
``write_community(path, community)`` writes it and ``load_community(path)`` reads
it back (the two round-trip exactly). The YAML schema, version 1::

    version: 1
    seed: 42                        # what generated it (informational)
    site: sunrise                   # MQTT site id of every device
    community:
      code: "330106001001"          # 12 digits: district 6 + street 3 + community 3
      name: Sunrise Community
      city: {code: "330100", name: Demo City}
      district: {code: "330106", name: West Lake District}
      street: {code: "330106001", name: Lingyin Street}
      bbox: [120.10, 30.25, 120.13, 30.28]   # lon_min, lat_min, lon_max, lat_max
    grids:                          # unit grids tiling bbox in rows of equal rectangles
      - code: "330106001001001"     # community code + 3-digit sequence (001..999)
        name: Grid 001
        households: 300
        population: 1000
        polygon: [[lon, lat], [lon, lat], [lon, lat], [lon, lat]]   # counter-clockwise, not closed
    forces:                         # professional forces and the case categories they own
      - {key: fire, name: Fire Brigade, categories: [fire_safety]}
    people:
      - id: gw-001                  # ^[a-z0-9][a-z0-9_-]{0,63}$
        name: Wang Fang
        role: grid_worker           # grid_worker | force_member | supervisor | operator
        phone: "13800000001"
        grids: ["330106001001001"]  # unit grids, or the street/district code; [] = the whole community
        force: null                 # force key (force_member only)
        categories: []              # categories they handle (force members: their force's)
    devices:                        # each an edge AgentConfig-shaped dict without [mqtt]/[outbox]
      - device: {id: smoke-001-01, site: sunrise, kind: sensor, grid: "330106001001001",
                 labels: {profile: smoke}}
        drivers: [{type: sim_sensor, profile: smoke, seed: 1234, interval_s: 10.0, handle: smoke-001-01}]

Runners add ``mqtt`` (and ``outbox``) to each device entry with :func:`agent_config`.
:func:`simulators.community_workflow.to_workflow` converts the grids, forces and people into the hub's case
workflow YAML (``hub.cases.loader``: city, areas, forces, people with roles and
responsibilities, category routing), so one generated community feeds both sides.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from edge.vocabulary import CATEGORIES, FORCE_NAMES, ForceKind
from edge.wire import check_id, is_valid_grid
from simulators.signals import mix

SCHEMA_VERSION: Final = 1
#: Expected devices per grid by kind ("camera", "kiosk") or sensor profile; fractions are drawn per grid.
DEFAULT_MIX: Final[dict[str, float]] = {
    "camera": 1.0,
    "kiosk": 0.3,
    "smoke": 1.0,
    "env": 0.5,
    "water": 0.3,
    "manhole": 0.5,
    "charger": 0.5,
    "hydrant": 0.3,
    "bin": 1.0,
    "gas": 0.2,
}
SENSOR_PROFILES: Final = ("env", "smoke", "water", "manhole", "charger", "hydrant", "bin", "gas")
CAMERA_SCENES: Final = ("busy", "static")
#: The zones of a community camera (frame fractions; a person is where their feet are): on the
#: pavement in front, four people for 5 s are a crowd; in the doorway in its middle, one who stays
#: 30 s is loitering; the fenced yard behind is closed to the public at all hours, so anyone
#: standing there is an intrusion.
CAMERA_ZONES: Final[tuple[dict[str, Any], ...]] = (
    {
        "name": "pavement",
        "polygon": [[0.0, 0.8], [1.0, 0.8], [1.0, 1.0], [0.0, 1.0]],
        "crowd_min_people": 4,
        "crowd_min_s": 5.0,
    },
    {"name": "doorway", "polygon": [[0.35, 0.8], [0.65, 0.8], [0.65, 1.0], [0.35, 1.0]], "loiter_s": 30.0},
    {"name": "yard", "polygon": [[0.0, 0.6], [1.0, 0.6], [1.0, 0.8], [0.0, 0.8]], "restricted_hours": ["00:00-24:00"]},
)
#: force key -> its kind in the vocabulary
FORCE_KEYS: Final[dict[str, ForceKind]] = {
    "fire": ForceKind.FIRE,
    "police": ForceKind.POLICE,
    "urban_management": ForceKind.URBAN_MANAGEMENT,
    "property": ForceKind.PROPERTY,
    "service_it": ForceKind.IT,
    "maintenance": ForceKind.MAINTENANCE,
}
#: force key -> (name, categories it owns): the owners come from the vocabulary, never typed here
FORCES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    key: (FORCE_NAMES[kind][0], tuple(c.value for c, info in CATEGORIES.items() if info.owner is kind))
    for key, kind in FORCE_KEYS.items()
}
ROLES: Final = ("grid_worker", "force_member", "supervisor", "operator")
_KIND_PREFIX: Final = {"camera": "cam", "kiosk": "kiosk"}
#: Names of the generated streets and their communities (street_seq 1, 2, ...), cycled beyond.
STREET_NAMES: Final = (("Lingyin Street", "Sunrise Community"), ("Xixi Street", "Riverside Community"))
_SURNAMES: Final = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun")
_GIVEN: Final = ("Fang", "Wei", "Min", "Jing", "Lei", "Qiang", "Yan", "Jun", "Hui", "Tao", "Xia", "Ping", "Hao")


class CommunityError(ValueError):
    """A community file or request that does not fit the schema; ``path`` names the place."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True, slots=True)
class Grid:
    """A unit grid cell."""

    code: str
    name: str
    households: int
    population: int
    polygon: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Force:
    """A professional force and the categories it owns."""

    key: str
    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Person:
    """Someone who receives, handles, verifies or watches cases."""

    id: str
    name: str
    role: str
    phone: str
    grids: tuple[str, ...] = ()
    force: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Community:
    """One generated community: its grids, forces, people and devices."""

    seed: int
    site: str
    community: Mapping[str, Any]
    grids: tuple[Grid, ...]
    forces: tuple[Force, ...]
    people: tuple[Person, ...]
    devices: tuple[Mapping[str, Any], ...] = field(default=())

    def grid_codes(self) -> list[str]:
        """Codes of every grid, in order."""
        return [g.code for g in self.grids]


def _tile(count: int, bbox: tuple[float, float, float, float]) -> list[tuple[tuple[float, float], ...]]:
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    lon0, lat0, lon1, lat1 = bbox
    width, height = (lon1 - lon0) / cols, (lat1 - lat0) / rows
    cells: list[tuple[tuple[float, float], ...]] = []
    for i in range(count):
        row, col = divmod(i, cols)
        x0, y0 = round(lon0 + col * width, 7), round(lat0 + row * height, 7)
        x1, y1 = round(lon0 + (col + 1) * width, 7), round(lat0 + (row + 1) * height, 7)
        cells.append(((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
    return cells


def _device(
    kind: str, grid_seq: int, n: int, grid: str, *, site: str, seed: int, interval_s: float, prefix: str = ""
) -> dict[str, Any]:
    device_id = f"{prefix}{_KIND_PREFIX.get(kind, kind)}-{grid_seq:03d}-{n:02d}"
    dseed = mix(seed, grid_seq, n, sum(map(ord, kind))) % (2**31)
    labels: dict[str, str] = {}
    if kind == "camera":
        scene = CAMERA_SCENES[dseed % len(CAMERA_SCENES)]
        driver: dict[str, Any] = {
            "type": "sim_camera",
            "scene": scene,
            "seed": dseed,
            "fps": 2.0,
            "interval_s": interval_s,
            "handle": device_id,
            "zones": [dict(zone) for zone in CAMERA_ZONES],
        }
        device_kind = "camera"
    elif kind == "kiosk":
        driver = {"type": "sim_kiosk", "seed": dseed, "interval_s": interval_s, "handle": device_id}
        device_kind = "kiosk"
    else:
        driver = {"type": "sim_sensor", "profile": kind, "seed": dseed, "interval_s": interval_s, "handle": device_id}
        device_kind, labels = "sensor", {"profile": kind}
    return {
        "device": {"id": device_id, "site": site, "kind": device_kind, "grid": grid, "labels": labels},
        "drivers": [driver],
    }


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN)}"


def _people(
    rng: random.Random, codes: list[str], grids_per_member: int, levels: tuple[str, str], prefix: str = ""
) -> list[Person]:
    """The community's people; ids carry ``prefix`` except the district's supervisor and the operator,
    who are the same people whichever street of the district a community lies in."""
    people: list[Person] = []

    def add(pid: str, role: str, grids: list[str], force: str | None = None, cats: tuple[str, ...] = ()) -> None:
        people.append(Person(pid, _name(rng), role, f"138{len(people) + 1:08d}", tuple(grids), force, cats))

    for i, code in enumerate(codes, start=1):
        add(f"{prefix}gw-{i:03d}", "grid_worker", [code])
    chunks = [codes[i : i + grids_per_member] for i in range(0, len(codes), grids_per_member)]
    for key, (_, cats) in FORCES.items():
        for j, chunk in enumerate(chunks, start=1):
            add(f"{prefix}{key.replace('_', '-')}-{j:02d}", "force_member", chunk, key, cats)
    for j, chunk in enumerate([codes[i : i + 10] for i in range(0, len(codes), 10)], start=1):
        add(f"{prefix}sup-{j:02d}", "supervisor", chunk)
    street, district = levels
    add(f"{prefix}sup-street", "supervisor", [street])  # escalation goes community -> street -> district
    add("sup-district", "supervisor", [district])
    add("operator-01", "operator", [])
    return people


def generate_community(
    grids: int = 10,
    *,
    seed: int = 42,
    site: str = "sunrise",
    district_code: str = "330106",
    street_seq: int = 1,
    community_seq: int = 1,
    bbox: tuple[float, float, float, float] = (120.10, 30.25, 120.13, 30.28),
    mix_per_grid: Mapping[str, float] | None = None,
    interval_s: float = 10.0,
    grids_per_member: int = 5,
    prefix: str = "",
) -> Community:
    """Generate ``grids`` unit grids with devices and people, deterministically for ``seed``.

    ``prefix`` starts every device id and every street-level person id, so several generated
    communities can share one hub (see :func:`generate_district`).
    """
    if not 1 <= grids <= 999:
        raise CommunityError("grids", f"{grids} is not between 1 and 999 (3-digit sequence)")
    if len(district_code) != 6 or not district_code.isdigit():
        raise CommunityError("district_code", f"{district_code!r} is not 6 digits")
    check_id(site, "site")
    mix_ = dict(DEFAULT_MIX if mix_per_grid is None else mix_per_grid)
    unknown = sorted(set(mix_) - {"camera", "kiosk", *SENSOR_PROFILES})
    if unknown:
        raise CommunityError(
            "mix", f"unknown device kinds {unknown}; use camera, kiosk or {', '.join(SENSOR_PROFILES)}"
        )
    rng = random.Random(seed)
    street = f"{district_code}{street_seq:03d}"
    community_code = f"{street}{community_seq:03d}"
    cells = _tile(grids, bbox)
    grid_list: list[Grid] = []
    devices: list[dict[str, Any]] = []
    for i, cell in enumerate(cells, start=1):
        code = f"{community_code}{i:03d}"
        households = rng.randint(250, 350)
        grid_list.append(Grid(code, f"Grid {i:03d}", households, round(households * rng.uniform(2.8, 3.6)), cell))
        for kind, expected in mix_.items():
            count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
            devices.extend(
                _device(kind, i, n, code, site=site, seed=seed, interval_s=interval_s, prefix=prefix)
                for n in range(1, count + 1)
            )
    forces = tuple(Force(key, name, cats) for key, (name, cats) in FORCES.items())
    street_name, community_name = STREET_NAMES[(street_seq - 1) % len(STREET_NAMES)]
    community = {
        "code": community_code,
        "name": community_name,
        "city": {"code": f"{district_code[:4]}00", "name": "Demo City"},
        "district": {"code": district_code, "name": "West Lake District"},
        "street": {"code": street, "name": street_name},
        "bbox": list(bbox),
    }
    people = _people(rng, [g.code for g in grid_list], grids_per_member, (street, district_code), prefix)
    return Community(seed, site, community, tuple(grid_list), forces, tuple(people), tuple(devices))


def generate_district(
    streets: int = 2,
    grids_per_street: int = 3,
    *,
    seed: int = 42,
    site: str = "sunrise",
    district_code: str = "330106",
    mix_per_grid: Mapping[str, float] | None = None,
    interval_s: float = 10.0,
) -> tuple[Community, ...]:
    """One district of ``streets`` streets, one community each, side by side on the map.

    Street ``k`` (1-based) has code ``district + k``; its device ids and people ids start with
    ``s{k}-`` (``s1-sup-street`` supervises street 1), while ``sup-district`` and ``operator-01``
    are shared. :func:`simulators.community_workflow.to_district_workflow` makes the hub's cases YAML.
    """
    if not 1 <= streets <= 999:
        raise CommunityError("streets", f"{streets} is not between 1 and 999 (3-digit sequence)")
    width = 0.03
    return tuple(
        generate_community(
            grids_per_street,
            seed=seed + k,
            site=site,
            district_code=district_code,
            street_seq=k,
            bbox=(120.10 + (k - 1) * (width + 0.005), 30.25, 120.10 + (k - 1) * (width + 0.005) + width, 30.28),
            mix_per_grid=mix_per_grid,
            interval_s=interval_s,
            prefix=f"s{k}-",
        )
        for k in range(1, streets + 1)
    )


def agent_config(device: Mapping[str, Any], mqtt_url: str, **sections: Any) -> dict[str, Any]:
    """A full edge agent config dict for one device entry: adds ``mqtt`` (and e.g. ``outbox=``) sections."""
    return {**device, "mqtt": {"url": mqtt_url}, **sections}


def to_dict(community: Community) -> dict[str, Any]:
    """The YAML document for ``community``."""
    return {
        "version": SCHEMA_VERSION,
        "seed": community.seed,
        "site": community.site,
        "community": dict(community.community),
        "grids": [{**asdict(g), "polygon": [list(p) for p in g.polygon]} for g in community.grids],
        "forces": [{**asdict(f), "categories": list(f.categories)} for f in community.forces],
        "people": [{**asdict(p), "grids": list(p.grids), "categories": list(p.categories)} for p in community.people],
        "devices": [dict(d) for d in community.devices],
    }


def write_community(path: str | Path, community: Community) -> Path:
    """Write ``community`` as YAML to ``path`` and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(to_dict(community), sort_keys=False, allow_unicode=True, width=120))
    return target


def _need(obj: Mapping[str, Any], key: str, kind: type, path: str) -> Any:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if not isinstance(value, kind):
        raise CommunityError(f"{path}{key}", f"must be a {kind.__name__}")
    return value


def _check_document(doc: Mapping[str, Any]) -> None:
    if doc.get("version") != SCHEMA_VERSION:
        raise CommunityError("version", f"must be {SCHEMA_VERSION}, got {doc.get('version')!r}")
    check_id(_need(doc, "site", str, ""), "site")
    code = _need(_need(doc, "community", dict, ""), "code", str, "community.")
    if len(code) != 12 or not code.isdigit():
        raise CommunityError("community.code", f"{code!r} is not 12 digits (district 6 + street 3 + community 3)")
    known: set[str] = set()
    for i, grid in enumerate(_need(doc, "grids", list, "")):
        where = f"grids[{i}]."
        gcode = _need(grid, "code", str, where)
        if not is_valid_grid(gcode) or not gcode.startswith(code):
            raise CommunityError(f"{where}code", f"{gcode!r} is not a 15-digit code inside community {code}")
        if gcode in known:
            raise CommunityError(f"{where}code", f"{gcode} appears twice")
        known.add(gcode)
        polygon = _need(grid, "polygon", list, where)
        if len(polygon) < 3 or any(not isinstance(p, list) or len(p) != 2 for p in polygon):
            raise CommunityError(f"{where}polygon", "must be at least 3 [lon, lat] points")
    areas = known | {code, code[:9], code[:6]}
    forces = {_need(f, "key", str, f"forces[{i}].") for i, f in enumerate(_need(doc, "forces", list, ""))}
    ids: set[str] = set()
    for i, person in enumerate(_need(doc, "people", list, "")):
        where = f"people[{i}]."
        pid = check_id(_need(person, "id", str, where), f"{where}id")
        if pid in ids:
            raise CommunityError(f"{where}id", f"{pid} appears twice")
        ids.add(pid)
        if person.get("role") not in ROLES:
            raise CommunityError(f"{where}role", f"{person.get('role')!r} is not one of {', '.join(ROLES)}")
        if person.get("role") == "force_member" and person.get("force") not in forces:
            raise CommunityError(f"{where}force", f"{person.get('force')!r} is not a force key")
        for grid_code in _need(person, "grids", list, where):
            if grid_code not in areas:
                raise CommunityError(f"{where}grids", f"unknown grid {grid_code!r}")
    devices: set[str] = set()
    for i, entry in enumerate(_need(doc, "devices", list, "")):
        where = f"devices[{i}].device."
        device = _need(entry, "device", dict, f"devices[{i}].")
        did = check_id(_need(device, "id", str, where), f"{where}id")
        if did in devices:
            raise CommunityError(f"{where}id", f"{did} appears twice")
        devices.add(did)
        if device.get("grid") not in known:
            raise CommunityError(f"{where}grid", f"unknown grid {device.get('grid')!r}")
        if not _need(entry, "drivers", list, f"devices[{i}]."):
            raise CommunityError(f"devices[{i}].drivers", "needs at least one driver")


def from_dict(doc: Mapping[str, Any]) -> Community:
    """Build a :class:`Community` from a YAML document, checking codes and references."""
    _check_document(doc)
    grids = tuple(
        Grid(g["code"], g["name"], g["households"], g["population"], tuple((p[0], p[1]) for p in g["polygon"]))
        for g in doc["grids"]
    )
    forces = tuple(Force(f["key"], f["name"], tuple(f["categories"])) for f in doc["forces"])
    people = tuple(
        Person(
            p["id"], p["name"], p["role"], str(p["phone"]), tuple(p["grids"]), p.get("force"), tuple(p["categories"])
        )
        for p in doc["people"]
    )
    return Community(doc["seed"], doc["site"], doc["community"], grids, forces, people, tuple(doc["devices"]))


def load_community(path: str | Path) -> Community:
    """Read a community YAML file written by :func:`write_community` (or by hand, same schema)."""
    doc = yaml.safe_load(Path(path).read_text())
    if not isinstance(doc, dict):
        raise CommunityError(str(path), "the document must be a mapping")
    return from_dict(doc)


__all__ = [
    "Community",
    "CommunityError",
    "Force",
    "Grid",
    "Person",
    "agent_config",
    "from_dict",
    "generate_community",
    "generate_district",
    "load_community",
    "to_dict",
    "write_community",
]
