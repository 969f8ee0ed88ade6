"""Rule definitions: what turns readings, events and device health into incidents.

Every rule has an ``id``, a ``kind`` (the discriminator), a ``category`` (which
force handles it) and a ``severity``; a :class:`RuleScope` narrows it to device
kinds, sites, grids (or grid prefixes: a street, a community) and labels. Rules
are pydantic models with ``extra="forbid"`` so a typo in YAML fails loudly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from edge.vocabulary import CATEGORY_NAMES, EVENT_TYPES, UnknownNameError, closest, require_known
from edge.wire import ID_PATTERN, METRIC_PATTERN, DeviceKind, Severity

Comparison: TypeAlias = Literal[">", ">=", "<", "<="]
ClearMode: TypeAlias = Literal["immediate", "verify"]

#: Severity order, lowest first (groups take the highest of their members).
SEVERITY_RANK: dict[str, int] = {s.value: i for i, s in enumerate(Severity)}


def compare(value: float, op: Comparison, limit: float) -> bool:
    """Apply a rule comparison."""
    if op == ">":
        return value > limit
    if op == ">=":
        return value >= limit
    if op == "<":
        return value < limit
    return value <= limit


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleScope(_Strict):
    """Which devices a rule applies to; an empty list means any."""

    kinds: tuple[DeviceKind, ...] = Field(default=(), description="device kinds (camera, kiosk, sensor)")
    sites: tuple[str, ...] = Field(default=(), description="site ids")
    grids: tuple[str, ...] = Field(default=(), description="grid codes or prefixes of them (street, community)")
    labels: dict[str, str] = Field(default_factory=dict, description="labels the device must carry, all of them")

    def matches(self, kind: DeviceKind | str | None, site: str, grid: str | None, labels: Mapping[str, str]) -> bool:
        """True when a device with these attributes is in scope."""
        if self.kinds and (kind is None or kind not in self.kinds):  # StrEnum: "camera" == CAMERA
            return False
        if self.sites and site not in self.sites:
            return False
        if self.grids and (grid is None or not any(grid.startswith(g) for g in self.grids)):
            return False
        return all(labels.get(k) == v for k, v in self.labels.items())


class RuleBase(_Strict):
    """Fields every rule kind shares."""

    id: str = Field(pattern=f"^{ID_PATTERN}$", description="stable rule id, part of the open-incident key")
    title: str = Field(default="", max_length=200, description="human title; defaults to the id")
    title_zh: str = Field(default="", max_length=200, description="the title in Chinese; defaults to the title")
    category: str = Field(pattern=f"^{METRIC_PATTERN}$", description="incident category, routes to a force")
    severity: Severity = Field(description="incident severity")
    enabled: bool = Field(default=True, description="disabled rules raise nothing")
    scope: RuleScope = Field(default_factory=RuleScope, description="which devices the rule watches")
    clear_mode: ClearMode = Field(
        default="immediate", description="close at once when the condition clears, or wait verify_s first"
    )
    verify_s: float = Field(default=60.0, ge=0, description="how long a clear must hold in verify mode")
    flap_window_s: float = Field(
        default=300.0, ge=0, description="a re-raise this soon after a clear reopens the incident as a flap"
    )

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        return require_known("category", value, CATEGORY_NAMES)

    @property
    def display_title(self) -> str:
        """The title, or the id when none is set."""
        return self.title or self.id.replace("_", " ")


class ThresholdRule(RuleBase):
    """``metric op value`` held for ``for_s``; clears on ``clear_op clear_value`` held for ``clear_for_s``."""

    kind: Literal["threshold"] = "threshold"
    metric: str = Field(pattern=f"^{METRIC_PATTERN}$", description="telemetry metric name")
    op: Comparison = Field(description="comparison that raises")
    value: float = Field(description="raise limit")
    for_s: float = Field(default=0.0, ge=0, description="how long the raise condition must hold")
    clear_value: float | None = Field(default=None, description="hysteresis limit; defaults to value")
    clear_for_s: float = Field(default=0.0, ge=0, description="how long the clear condition must hold")

    @model_validator(mode="after")
    def _hysteresis_sane(self) -> ThresholdRule:
        if self.clear_value is None:
            return self
        if self.op in (">", ">=") and self.clear_value > self.value:
            raise ValueError(f"clear_value {self.clear_value} must not be above value {self.value} for {self.op}")
        if self.op in ("<", "<=") and self.clear_value < self.value:
            raise ValueError(f"clear_value {self.clear_value} must not be below value {self.value} for {self.op}")
        return self

    def raises(self, value: float) -> bool:
        """True when ``value`` meets the raise condition."""
        return compare(value, self.op, self.value)

    def clears(self, value: float) -> bool:
        """True when ``value`` meets the clear condition (the hysteresis side)."""
        if self.clear_value is None:
            return not self.raises(value)
        if self.op in (">", ">="):
            return value < self.clear_value
        return value > self.clear_value


class RateRule(RuleBase):
    """The metric changes by at least ``change`` within ``window_s`` (rise, fall or either)."""

    kind: Literal["rate"] = "rate"
    metric: str = Field(pattern=f"^{METRIC_PATTERN}$", description="telemetry metric name")
    change: float = Field(gt=0, description="absolute change that raises")
    window_s: float = Field(gt=0, description="window the change is measured over")
    direction: Literal["rise", "fall", "any"] = Field(default="rise", description="which way counts")


class AbsenceRule(RuleBase):
    """No telemetry (or none carrying ``metric``) for ``after_s`` from a device that has reported before."""

    kind: Literal["absence"] = "absence"
    metric: str | None = Field(default=None, pattern=f"^{METRIC_PATTERN}$", description="metric; any if unset")
    after_s: float = Field(gt=0, description="silence that raises")


class OfflineRule(RuleBase):
    """Device health (from the registry) in one of ``states`` for at least ``after_s``."""

    kind: Literal["offline"] = "offline"
    states: tuple[Literal["offline", "stale", "unknown"], ...] = Field(
        default=("offline",), min_length=1, description="health states that count as down"
    )
    after_s: float = Field(default=0.0, ge=0, description="how long the device must stay down")


def check_event_types(event_types: tuple[str, ...], declares: tuple[str, ...]) -> None:
    """Every event type is in the vocabulary or declared by the rule; a declared one must be new."""
    for word in declares:
        if word in EVENT_TYPES:
            raise ValueError(f"declares {word!r}, which the vocabulary already defines: use it without declaring")
    for word in event_types:
        if word not in EVENT_TYPES and word not in declares:
            near = closest(word, [*EVENT_TYPES, *declares])
            raise UnknownNameError("event type", word, near)


_DECLARES = Field(
    default=(),
    description="new event types this rule introduces (an operator's own device alarms); "
    "every other event type must be one of the vocabulary's (edge.vocabulary.EventType)",
)


class EventRule(RuleBase):
    """Device events of these types open (``active``) and clear (``cleared``) incidents."""

    kind: Literal["event"] = "event"
    event_types: tuple[str, ...] = Field(min_length=1, description="device event types mapped by this rule")
    declares: tuple[str, ...] = _DECLARES
    clear_on_event: bool = Field(default=True, description="a 'cleared' event clears the incident")

    @model_validator(mode="after")
    def _known_event_types(self) -> EventRule:
        check_event_types(self.event_types, self.declares)
        return self


class DataLossRule(RuleBase):
    """A gap of messages ingest could not recover; stays open until an operator closes it."""

    kind: Literal["data_loss"] = "data_loss"


class CompositeRule(RuleBase):
    """At least ``min_devices`` devices of the same grid agree within ``within_s`` (one incident per grid)."""

    kind: Literal["composite"] = "composite"
    metric: str | None = Field(default=None, pattern=f"^{METRIC_PATTERN}$", description="metric compared")
    op: Comparison | None = Field(default=None, description="comparison for metric")
    value: float | None = Field(default=None, description="limit for metric")
    event_types: tuple[str, ...] = Field(default=(), description="or: active events of these types count")
    declares: tuple[str, ...] = _DECLARES
    min_devices: int = Field(ge=2, description="N: how many devices must agree")
    within_s: float = Field(gt=0, description="T: how recent each device's agreement must be")

    @model_validator(mode="after")
    def _one_condition(self) -> CompositeRule:
        has_metric = self.metric is not None and self.op is not None and self.value is not None
        if has_metric == bool(self.event_types):
            raise ValueError("give either metric+op+value or event_types")
        check_event_types(self.event_types, self.declares)
        return self


Rule: TypeAlias = Annotated[
    ThresholdRule | RateRule | AbsenceRule | OfflineRule | EventRule | DataLossRule | CompositeRule,
    Field(discriminator="kind"),
]

RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)
