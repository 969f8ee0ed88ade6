"""Scenario files: a seeded community, a timeline of device events, faults and people, and assertions.

A scenario is a YAML document validated by :class:`Scenario` (unknown keys are refused
and the error names the bad key). Durations are numbers of seconds or strings such as
``500ms``, ``5s``, ``2m``, ``1h``. The schema is documented in ``docs/simulators.md``;
the runner lives in :mod:`simulators.runner`. Shipped scenarios are in
``simulators/scenarios/*.yaml`` and :func:`shipped` lists them.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from edge.vocabulary import CATEGORY_NAMES, EVENT_TYPES, require_known

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ScenarioError(ValueError):
    """A scenario file that cannot be read or does not validate; the message names the key."""


def parse_seconds(value: Any) -> float:
    """``5``, ``"5s"``, ``"500ms"``, ``"2m"``, ``"1h"`` → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 5s, 2m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"{value!r} is not a duration (use seconds or 500ms, 5s, 2m, 1h)")


Seconds = Annotated[float, BeforeValidator(parse_seconds)]
#: A category of the vocabulary (or '*'), an alarm of the vocabulary: a scenario naming another word
#: is refused when it is loaded, as a rules or cases file would be.
CategoryName = Annotated[str, AfterValidator(lambda v: require_known("category", v, {*CATEGORY_NAMES, "*"}))]
EventTypeName = Annotated[str, AfterValidator(lambda v: require_known("event type", v, EVENT_TYPES))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommunitySpec(_Strict):
    """The generated community the scenario runs on (see :mod:`simulators.community`)."""

    grids: int = Field(default=2, ge=1, le=999, description="Unit grids.")
    mix: dict[str, float] | None = Field(
        default=None, description="Expected devices per grid by kind (camera, kiosk or a sensor profile)."
    )
    interval: Seconds = Field(default=5.0, gt=0, description="Seconds between readings of each device.")
    site: str = Field(default="sunrise", description="MQTT site id of every device.")
    camera_scenes: dict[str, str] = Field(
        default_factory=dict, description="Camera device id -> scene name (e.g. covered, defocus, moved)."
    )


class SlaSpec(_Strict):
    """Short SLA limits for the scenario's case workflow (working time; the calendar is made 24/7)."""

    category: CategoryName = Field(default="*", description="Category or '*'.")
    severity: str = Field(default="*", description="Severity or '*'.")
    dispatch: str | None = Field(default=None, description="Limit report -> dispatch, e.g. 0.5m.")
    accept: str | None = Field(default=None, description="Limit dispatch -> accept, e.g. 0.25m.")
    handle: str | None = Field(default=None, description="Limit accept -> feedback.")


class TriggerAction(_Strict):
    """Force an alarm condition on a simulated device (sim_sensor alarm type or sim_kiosk trigger)."""

    device: str = Field(description="Device id (the sim driver's handle).")
    condition: EventTypeName = Field(description="smoke, heat, water_leak, paper_out, printer_jam, ...")
    duration: Seconds | None = Field(default=None, description="How long; default until released.")


class ReleaseAction(_Strict):
    """End a forced condition (for kiosk paper: a refill)."""

    device: str = Field(description="Device id.")
    condition: EventTypeName = Field(description="The condition to release.")


class PartitionAction(_Strict):
    """Cut the network of one device or of every device in a grid for a while."""

    device: str | None = Field(default=None, description="Device id.")
    grid: str | None = Field(default=None, description="15-digit grid code, or its 3-digit sequence (001).")
    duration: Seconds = Field(alias="for", gt=0, description="How long the partition lasts.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_target(self) -> PartitionAction:
        if (self.device is None) == (self.grid is None):
            raise ValueError("partition needs exactly one of device or grid")
        return self


class OutboxFullAction(_Strict):
    """Fill a device's outbox: cut its network for ``for`` while its outbox holds only ``max_bytes``.

    The device evicts its oldest telemetry and declares the gap when it reconnects, so the
    hub records the loss (never silent). The device runs with the small outbox from the start.
    """

    device: str = Field(description="Device id.")
    duration: Seconds = Field(alias="for", gt=0, description="How long the device is cut off.")
    max_bytes: int = Field(default=1024, ge=256, description="Outbox bound (unsent bytes) of this device.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ClockSkewAction(_Strict):
    """Shift a device's clock from now on (its timestamps, its alarms' times)."""

    device: str = Field(description="Device id.")
    seconds: float = Field(description="Offset added to the device's clock (negative: behind).")


class OutageAction(_Strict):
    """Stop a server abruptly and start it again after ``down``."""

    down: Seconds = Field(default=2.0, ge=0, description="How long it stays down.")


class StoreDownAction(_Strict):
    """SIGKILL the scenario's InfluxDB (``store: influxdb-v1``) and start it again after ``for``.

    The timeline goes on meanwhile; the hub spools its series writes to disk and replays
    them once the store answers again.
    """

    duration: Seconds = Field(alias="for", gt=0, description="How long the store stays down.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


CaseVerb = Literal["accept", "return", "handle", "feedback", "verify", "close", "evaluate", "cancel", "plan_step"]


class CaseAction(_Strict):
    """A simulated person acts on the oldest matching open case through the hub's case API."""

    action: CaseVerb = Field(description="What the person does.")
    category: CategoryName | None = Field(default=None, description="Only cases of this category.")
    grid: str | None = Field(default=None, description="Only cases in this grid (code or 3-digit sequence).")
    state: str | None = Field(default=None, description="Only cases in this state.")
    actor: str | None = Field(
        default=None, description="Person id (X-Actor); default: the first assignee, or a supervisor to verify/close."
    )
    result: Literal["pass", "fail"] | None = Field(default=None, description="verify: pass or fail.")
    reason: str | None = Field(default=None, description="return/cancel: why.")
    satisfaction: int | None = Field(default=None, ge=1, le=5, description="evaluate: 1..5.")
    step: str | None = Field(default=None, description="plan_step: the emergency-plan step done (recover, review...).")
    note: str = Field(default="", description="Note on the transition.")

    @model_validator(mode="after")
    def _step_named(self) -> Self:
        if (self.action == "plan_step") != (self.step is not None):
            raise ValueError("'step' goes with action plan_step, and only with it")
        return self


class Step(_Strict):
    """One timeline step: ``at`` plus exactly one action."""

    at: Seconds = Field(description="Scenario time of the step.")
    trigger: TriggerAction | None = None
    release: ReleaseAction | None = None
    partition: PartitionAction | None = None
    broker_restart: OutageAction | None = None
    hub_kill: OutageAction | None = None
    outbox_full: OutboxFullAction | None = None
    clock_skew: ClockSkewAction | None = None
    store_down: StoreDownAction | None = None
    case: CaseAction | None = None
    expect: list[Expectation] | None = Field(default=None, description="Assertions checked at this time.")

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a step needs exactly one action of {', '.join(ACTIONS)}; got {given or 'none'}")
        return self

    @property
    def action(self) -> str:
        """The name of the step's action."""
        return next(name for name in ACTIONS if getattr(self, name) is not None)


ACTIONS = (
    "trigger",
    "release",
    "partition",
    "broker_restart",
    "hub_kill",
    "outbox_full",
    "clock_skew",
    "store_down",
    "case",
    "expect",
)


#: Expectations that read the scenario's InfluxDB directly (only with ``store: influxdb-v1``).
STORE_EXPECTATIONS = frozenset({"series_points", "series_missing"})


class Count(_Strict):
    """A count bound: exactly ``count``, or within ``min``..``max``."""

    count: int | None = Field(default=None, ge=0, description="Exactly this many.")
    min: int | None = Field(default=None, ge=0, description="At least this many.")
    max: int | None = Field(default=None, ge=0, description="At most this many.")

    def holds(self, n: int) -> bool:
        """Whether ``n`` fits the bound (no bound given: at least one)."""
        if self.count is None and self.min is None and self.max is None:
            return n >= 1
        if self.count is not None and n != self.count:
            return False
        if self.min is not None and n < self.min:
            return False
        return not (self.max is not None and n > self.max)

    def text(self) -> str:
        """The bound as text."""
        if self.count is not None:
            return f"== {self.count}"
        parts = ([f">= {self.min}"] if self.min is not None else []) + (
            [f"<= {self.max}"] if self.max is not None else []
        )
        return " and ".join(parts) or ">= 1"


class IncidentsExpect(Count):
    """Incidents matching the filters (hub ``/api/v1/incidents``)."""

    rule: str | None = Field(default=None, description="Rule id, e.g. smoke, device_offline.")
    device: str | None = Field(default=None, description="Device id.")
    grid: str | None = Field(default=None, description="Grid code or 3-digit sequence.")
    category: CategoryName | None = Field(default=None, description="Category.")
    state: Literal["open", "closed"] | None = Field(default=None, description="open or closed.")


class CasesExpect(Count):
    """Cases matching the filters (hub ``/api/v1/cases``)."""

    category: CategoryName | None = Field(default=None, description="Category.")
    grid: str | None = Field(default=None, description="Grid code or 3-digit sequence.")
    state: str | None = Field(default=None, description="Case state, e.g. dispatched, handling, closed.")
    escalated: bool | None = Field(default=None, description="Escalated at least one level (or not).")
    min_rework: int | None = Field(default=None, ge=0, description="Sent back by a failed verification this often.")


class DevicesExpect(Count):
    """Devices in a state (hub ``/api/v1/devices``)."""

    state: Literal["online", "stale", "offline", "unknown"] = Field(description="Health state.")
    device: str | None = Field(default=None, description="Device id.")
    grid: str | None = Field(default=None, description="Grid code or 3-digit sequence.")


class DataLossExpect(Count):
    """Seqs recorded as lost by the hub (sum of counts), optionally of one device."""

    device: str | None = Field(default=None, description="Device id.")


class SeriesPointsExpect(Count):
    """Points stored in the scenario's InfluxDB (``store: influxdb-v1``), counted by distinct timestamp."""

    device: str | None = Field(default=None, description="Device id (default: every device).")
    measurement: str | None = Field(default=None, description="Measurement, e.g. sensor (default: all).")


class SeriesMissingExpect(Count):
    """Telemetry points devices delivered (broker-acknowledged) that are not in the InfluxDB store."""

    device: str | None = Field(default=None, description="Device id (default: every device).")


class AlertsExpect(Count):
    """Alerts the hub raised since it started (``gs_alerts_total`` on ``/metrics``), by kind."""

    kind: str = Field(description="store_down, store_rejected, spool_high, spool_dropped or spool_failed.")


class Expectation(_Strict):
    """One assertion; exactly one key."""

    incidents: IncidentsExpect | None = None
    cases: CasesExpect | None = None
    devices: DevicesExpect | None = None
    deadletters: Count | None = Field(default=None, description="Dead letters stored by the hub.")
    data_loss: DataLossExpect | None = Field(default=None, description="Seqs recorded as lost (sum of counts).")
    all_online: Literal[True] | None = Field(default=None, description="Every device of the community is online.")
    series_points: SeriesPointsExpect | None = Field(default=None, description="Points in the InfluxDB store.")
    series_missing: SeriesMissingExpect | None = Field(
        default=None, description="Delivered telemetry points not in the InfluxDB store."
    )
    alerts: AlertsExpect | None = Field(default=None, description="Hub alerts of a kind since it started.")
    hub_up: Literal[True] | None = Field(
        default=None, description="The hub process never exited unplanned and answered every health probe."
    )

    @model_validator(mode="after")
    def _one(self) -> Expectation:
        given = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"an expectation needs exactly one of {', '.join(type(self).model_fields)}")
        return self

    @property
    def kind(self) -> str:
        """The expectation's key."""
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


class Scenario(_Strict):
    """A whole scenario."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="Short name (the file's stem).")
    description: str = Field(description="One line: what it shows.")
    seed: int = Field(default=42, ge=0, description="Seed of the community and the device signals.")
    store: Literal["embedded", "influxdb-v1"] = Field(
        default="embedded",
        description="The hub's series store: its embedded one, or a real influxd the runner starts.",
    )
    community: CommunitySpec = Field(default_factory=CommunitySpec, description="The generated community.")
    duration: Seconds = Field(gt=0, description="Scenario length (the timeline must fit in it).")
    max_speed: float = Field(
        default=1.0, ge=1.0, le=100.0, description="Largest --speed the scenario allows (1: real time only)."
    )
    settle: Seconds = Field(
        default=15.0, ge=0, description="After the end, how long final assertions may take to become true."
    )
    sla: list[SlaSpec] = Field(default_factory=list, description="Short SLA limits (the calendar becomes 24/7).")
    sla_sweep: Seconds | None = Field(
        default=None, gt=0, description="Run the hub's SLA sweep this often (default: the hub's own 30 s)."
    )
    timeline: list[Step] = Field(default_factory=list, description="Steps in time order.")
    expect: list[Expectation] = Field(default_factory=list, description="Assertions at the end.")

    @model_validator(mode="after")
    def _timeline_fits(self) -> Scenario:
        for i, step in enumerate(self.timeline):
            if step.at > self.duration:
                raise ValueError(f"timeline[{i}] at {step.at:g}s is after the end ({self.duration:g}s)")
            if step.store_down is not None and step.at + step.store_down.duration > self.duration:
                raise ValueError(
                    f"timeline.{i}.store_down: the store would still be down at the end "
                    f"({step.at:g}s + {step.store_down.duration:g}s > {self.duration:g}s)"
                )
        return self

    @model_validator(mode="after")
    def _store_keys_need_influx(self) -> Scenario:
        if self.store == "influxdb-v1":
            return self
        where = [f"timeline.{i}.store_down" for i, s in enumerate(self.timeline) if s.store_down is not None]
        places = [("expect", self.expect)]
        places += [(f"timeline.{i}.expect", s.expect or []) for i, s in enumerate(self.timeline)]
        where += [
            f"{place}.{j}.{e.kind}"
            for place, expectations in places
            for j, e in enumerate(expectations)
            if e.kind in STORE_EXPECTATIONS
        ]
        if where:
            raise ValueError(f"{where[0]}: needs `store: influxdb-v1` (this scenario's store is {self.store})")
        return self

    def steps(self) -> list[Step]:
        """The timeline sorted by time (stable)."""
        return sorted(self.timeline, key=lambda s: s.at)


Step.model_rebuild()


def _where(error: Any) -> str:
    return ".".join(str(p) for p in error["loc"]) or "(top)"


def parse_scenario(doc: Any, source: str = "scenario") -> Scenario:
    """Validate a loaded YAML document; :class:`ScenarioError` names the bad key."""
    if not isinstance(doc, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping, got {type(doc).__name__}")
    try:
        return Scenario.model_validate(doc)
    except ValidationError as exc:
        lines = [f"{source}: {_where(e)}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
        raise ScenarioError("\n".join(lines)) from exc


def load_scenario(ref: str | Path) -> Scenario:
    """A scenario from a file path, or a shipped scenario by name."""
    path = Path(ref)
    if not path.is_file():
        known = shipped()
        if str(ref) not in known:
            raise ScenarioError(f"no scenario file {ref}; shipped scenarios: {', '.join(sorted(known))}")
        path = known[str(ref)]
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    return parse_scenario(doc, str(path))


def shipped() -> dict[str, Path]:
    """Shipped scenario name -> file."""
    folder = Path(str(resources.files("simulators").joinpath("scenarios")))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}
