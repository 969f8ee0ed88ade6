"""Who may see and do what: the :class:`Principal` and per-resource policies as pure functions.

A principal is the signed-in person (roles, areas, force) or, in demo mode only,
the anonymous read-only demo viewer. Policies take a principal and the object as
the API shows it (a device, incident or case dict) and answer True/False; they do
no I/O, so they are tested without a hub. The routes apply them in one shape:

* a role that never sees a kind of resource gets **403** on all of it;
* list endpoints **filter** to the objects the principal may see;
* an object outside the principal's scope answers **404**, exactly like a missing
  one, so ids of other grids' cases cannot be probed;
* an object the principal may see but not act on answers **403**.

Areas are grid-code prefixes (a community code covers its unit grids), taken from
the person's responsibilities. See docs/security.md ("People and the API") for
the table of roles and permissions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

T = TypeVar("T")

ADMIN: Final = "admin"
OPERATOR: Final = "operator"
SUPERVISOR: Final = "supervisor"
GRID_WORKER: Final = "grid_worker"
FORCE_MEMBER: Final = "force_member"
RESIDENT: Final = "resident"
INTEGRATION: Final = "integration"
#: Anonymous requests of a hub in demo mode (never a role a person can hold).
DEMO_VIEWER: Final = "demo_viewer"
ROLES: Final = (ADMIN, OPERATOR, SUPERVISOR, GRID_WORKER, FORCE_MEMBER, RESIDENT, INTEGRATION)

#: See every device, incident and case; act on the hub's operations (dead letters, rules).
ALL_SEEING: Final = frozenset({ADMIN, OPERATOR})
#: Read-only everywhere they reach: devices, series, incidents (integration also in production).
FLEET_READERS: Final = frozenset({ADMIN, OPERATOR, SUPERVISOR, INTEGRATION, DEMO_VIEWER})
#: Fleet readers whose reach is the whole hub; a supervisor's reach is the subtree of their areas
#: (a street supervisor sees their street's devices and incidents, not the district's).
HUB_WIDE_READERS: Final = frozenset({ADMIN, OPERATOR, INTEGRATION, DEMO_VIEWER})
#: May see evidence (snapshot images and their metadata); supervisors only of their areas.
EVIDENCE_ROLES: Final = frozenset({ADMIN, OPERATOR, SUPERVISOR})
#: May act on incidents (acknowledge, note, close) they can see.
INCIDENT_ACTORS: Final = frozenset({ADMIN, OPERATOR, SUPERVISOR, GRID_WORKER})
#: May verify a case's audit chain, see the people directory, report cases and evaluate.
MANAGERS: Final = frozenset({ADMIN, OPERATOR, SUPERVISOR})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: person id, roles, areas (grid-code prefixes), force and the categories routed to it."""

    id: str
    roles: frozenset[str]
    grids: tuple[str, ...] = ()
    force: str | None = None
    #: Categories the routing table sends to ``force`` (what a force member handles).
    force_categories: frozenset[str] = field(default_factory=frozenset)
    #: Categories of the person's responsibilities ("*" = all).
    categories: frozenset[str] = frozenset({"*"})

    def has(self, *roles: str) -> bool:
        """True when the principal holds any of ``roles``."""
        return bool(self.roles.intersection(roles))

    @property
    def anonymous(self) -> bool:
        """True for the demo viewer (no credentials were given)."""
        return DEMO_VIEWER in self.roles

    def covers(self, grid: str | None) -> bool:
        """True when ``grid`` lies in one of the principal's areas."""
        return grid is not None and any(grid.startswith(g) for g in self.grids)

    def public(self) -> dict[str, Any]:
        """JSON view (``GET /api/v1/me``)."""
        return {
            "id": self.id,
            "roles": sorted(self.roles),
            "grids": list(self.grids),
            "force": self.force,
            "evidence": self.has(*EVIDENCE_ROLES),
        }


DEMO_PRINCIPAL: Final = Principal("demo-viewer", frozenset({DEMO_VIEWER}))


def principal_of(
    person_id: str,
    roles: Iterable[str],
    responsibilities: Iterable[tuple[Iterable[str], Iterable[str]]] = (),
    force: str | None = None,
    routes: Mapping[str, str] | None = None,
) -> Principal:
    """Build a principal from a directory person: responsibilities are (grids, categories) pairs."""
    grids: list[str] = []
    categories: set[str] = set()
    for resp_grids, resp_categories in responsibilities:
        grids.extend(g for g in resp_grids if g not in grids)
        categories.update(resp_categories)
    routed = frozenset(c for c, f in (routes or {}).items() if force is not None and f == force)
    return Principal(
        person_id, frozenset(roles) - {DEMO_VIEWER}, tuple(grids), force, routed, frozenset(categories or {"*"})
    )


# ------------------------------------------------------------------ devices, series


def may_list_devices(p: Principal) -> bool:
    """Whether the principal sees any device at all (else 403 on the device API)."""
    return p.has(*FLEET_READERS, GRID_WORKER, FORCE_MEMBER)


def reads_hub_wide(p: Principal) -> bool:
    """True when the principal reads every device and incident (lists need no per-object filter)."""
    return p.has(*HUB_WIDE_READERS)


def may_read_device(p: Principal, device: Mapping[str, Any]) -> bool:
    """Hub-wide readers see every device; supervisors, grid workers and force members those of their areas."""
    if reads_hub_wide(p):
        return True
    return p.has(SUPERVISOR, GRID_WORKER, FORCE_MEMBER) and p.covers(device.get("grid"))


def may_command_devices(p: Principal) -> bool:
    """Sending commands to devices at all: operators and admins."""
    return p.has(*ALL_SEEING)


def may_command_device(p: Principal, device: Mapping[str, Any]) -> bool:
    """Commanding one device: admins any; operators those of their areas, or any when they hold no areas.

    An operator without areas is the command centre's (they see every device, so they act on every
    device); an operator whose responsibilities name grids commands only devices in them, and a device
    the hub has no grid for only when the operator's reach is hub-wide.
    """
    if not may_command_devices(p):
        return False
    return p.has(ADMIN) or not p.grids or p.covers(device.get("grid"))


# ----------------------------------------------------------- dead letters, gaps, rules


def may_read_operations(p: Principal) -> bool:
    """Dead letters and data-loss records (raw device payloads): operators, admins, the demo viewer."""
    return p.has(*ALL_SEEING, DEMO_VIEWER)


def may_change_operations(p: Principal) -> bool:
    """Requeue or purge dead letters, change rules: operators and admins."""
    return p.has(*ALL_SEEING)


def may_read_rules(p: Principal) -> bool:
    """The alarm rules: managers, integrations and the demo viewer."""
    return p.has(*MANAGERS, INTEGRATION, DEMO_VIEWER)


# ------------------------------------------------------------------------- incidents


def may_list_incidents(p: Principal) -> bool:
    """Whether the principal sees any incident at all."""
    return p.has(*FLEET_READERS, GRID_WORKER, FORCE_MEMBER)


def may_read_incident(p: Principal, incident: Mapping[str, Any]) -> bool:
    """Hub-wide readers all; supervisors and grid workers their areas; force members also their routed categories."""
    if reads_hub_wide(p):
        return True
    if p.has(SUPERVISOR, GRID_WORKER) and p.covers(incident.get("grid")):
        return True
    if p.has(FORCE_MEMBER):
        return p.covers(incident.get("grid")) or incident.get("category") in p.force_categories
    return False


def may_act_on_incident(p: Principal, incident: Mapping[str, Any]) -> bool:
    """Acknowledge, note, close: operators and admins all; supervisors and grid workers in their areas."""
    if p.has(*ALL_SEEING):
        return True
    return p.has(SUPERVISOR, GRID_WORKER) and p.covers(incident.get("grid"))


# ----------------------------------------------------------------------------- cases


def may_list_cases(p: Principal) -> bool:
    """Every person role sees some cases (maybe none); integrations and the demo viewer none."""
    return p.has(ADMIN, OPERATOR, SUPERVISOR, GRID_WORKER, FORCE_MEMBER, RESIDENT)


def _involved(p: Principal, case: Mapping[str, Any]) -> bool:
    return p.id in (case.get("assignees") or ()) or p.id in (case.get("worker"), case.get("handler"))


def may_read_case(p: Principal, case: Mapping[str, Any]) -> bool:
    """Operators/admins all; supervisors and grid workers their areas; force members their force's; residents own."""
    if p.has(*ALL_SEEING):
        return True
    if p.has(SUPERVISOR, GRID_WORKER) and (p.covers(case.get("grid")) or _involved(p, case)):
        return True
    if p.has(FORCE_MEMBER) and p.force is not None and (case.get("force") == p.force or _involved(p, case)):
        return True
    return p.has(RESIDENT) and case.get("reporter") == p.id


def may_create_case(p: Principal) -> bool:
    """Report and register a case by hand: managers."""
    return p.has(*MANAGERS)


def may_act_on_case(p: Principal, case: Mapping[str, Any]) -> bool:
    """Transitions on a visible case; the state machine then checks the role per action (residents: evaluate)."""
    return may_read_case(p, case) and p.has(ADMIN, OPERATOR, SUPERVISOR, GRID_WORKER, FORCE_MEMBER, RESIDENT)


def may_read_case_audit(p: Principal, case: Mapping[str, Any]) -> bool:
    """A case's trail (it names people): whoever works on the case, not residents."""
    return may_read_case(p, case) and p.has(ADMIN, OPERATOR, SUPERVISOR, GRID_WORKER, FORCE_MEMBER)


def may_verify_audit(p: Principal, case: Mapping[str, Any]) -> bool:
    """Re-checking a case's hash chain: managers who can see the case."""
    return p.has(*MANAGERS) and may_read_case(p, case)


def may_evaluate(p: Principal) -> bool:
    """Evaluation reports: managers."""
    return p.has(*MANAGERS)


# ------------------------------------------------------------------------- directory


def may_read_areas(p: Principal) -> bool:
    """Grids and forces (no personal data): every signed-in person."""
    return not p.anonymous and bool(p.roles)


def may_read_area(p: Principal, code: str) -> bool:
    """An area's drill-down and roll-up: hub-wide readers any, others areas inside their own (their subtree)."""
    return reads_hub_wide(p) or p.covers(code)


def area_in_view(p: Principal, code: str) -> bool:
    """Whether the area is on the principal's map: inside their areas or above them (for names and paths).

    Principals without areas (hub-wide readers, force members who work by category, residents) see
    the whole map: areas carry no personal data.
    """
    return not p.grids or reads_hub_wide(p) or p.covers(code) or any(g.startswith(code) for g in p.grids)


def may_read_levels(p: Principal) -> bool:
    """The level drill-down and the camera platform (counts of devices, alarms, cases per area): managers."""
    return p.has(*MANAGERS)


def may_read_people(p: Principal) -> bool:
    """The people directory (names, roles, responsibilities): managers."""
    return p.has(*MANAGERS)


def may_manage_directory(p: Principal) -> bool:
    """Change grids, people, forces, routing; read the evidence access log: admins."""
    return p.has(ADMIN)


# -------------------------------------------------------------------------- evidence


def may_see_evidence(p: Principal, device: Mapping[str, Any] | None) -> bool:
    """Snapshots: operators and admins all; supervisors of the device's area. ``device`` None = unknown device."""
    if p.has(*ALL_SEEING):
        return True
    return p.has(SUPERVISOR) and device is not None and p.covers(device.get("grid"))


# --------------------------------------------------------------------------- stream


def may_see_event(p: Principal, kind: str, data: Mapping[str, Any]) -> bool:
    """Live stream: each change is shown to whoever may read the object it is about."""
    if p.has(*ALL_SEEING):
        return True
    if kind == "shutdown":
        return True
    if kind == "device":
        return may_read_device(p, data)
    if kind in {"incident", "incident_group"}:
        return may_read_incident(p, data)
    if kind == "case":
        case = data.get("case")
        return isinstance(case, Mapping) and may_read_case(p, case)
    if kind in {"data_loss", "alert", "cmd_ack", "incident_note"}:
        return may_read_operations(p)
    return False


# ------------------------------------------------------------------------- paging


def visible_page(
    fetch: Callable[[int, int], list[T]],
    visible: Callable[[T], bool],
    limit: int,
    offset: int,
    *,
    batch: int = 500,
) -> list[T]:
    """Page ``limit``/``offset`` over the visible items only, scanning ``fetch(limit, offset)`` in batches.

    Offsets count visible items, so paging a filtered list neither skips nor repeats anything.
    """
    out: list[T] = []
    skipped = 0
    raw_offset = 0
    while len(out) < limit:
        chunk = fetch(batch, raw_offset)
        for item in chunk:
            if not visible(item):
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append(item)
            if len(out) == limit:
                break
        if len(chunk) < batch:
            break
        raw_offset += batch
    return out
