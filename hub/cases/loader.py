"""YAML → grid model, named working calendars and SLA policy (pydantic, extra=forbid).

Errors are :class:`ConfigError` naming the key path, e.g. ``people.2.roles.0``.

Calendars: ``calendars:`` names them (``always: {around_the_clock: true}``, ``office:
{hours: ..., weekend: ..., holidays: ...}``); ``default_calendar`` (``office`` unless
set) is the one for SLA rules that name none and for the built-in limits. The older
one-calendar form, ``calendar: {...}``, still loads: it *is* the default calendar.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.vocabulary import CATEGORY_NAMES, EVENT_TYPES, FORCE_KINDS, require_known
from edge.wire import Severity
from hub.cases.calendar import CalendarError, WorkingCalendar
from hub.cases.grid import Area, Force, GridError, GridModel, Person, Responsibility, Role
from hub.cases.plans import Phase, Plan, PlanBook, PlanStep
from hub.cases.sla import DEFAULT_CALENDAR, SlaError, SlaPolicy, UnknownCalendarError, parse_duration


class ConfigError(ValueError):
    """A bad grid/workflow config; ``path`` is the dotted key path of the problem."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CityConfig(_Strict):
    """The city at the top of the hierarchy."""

    code: str = Field(description="city code, e.g. 110000")
    name: str = Field(description="display name")


class AreaConfig(_Strict):
    """A district (6), street (9), community (12) or unit grid (15 digits)."""

    code: str = Field(description="6/9/12/15-digit area code")
    name: str = Field(description="display name")
    households: int = Field(0, ge=0, description="households in the area")
    population: int = Field(0, ge=0, description="residents in the area")
    polygon: list[tuple[float, float]] = Field(default_factory=list, description="boundary as [lon, lat] pairs")


class ForceConfig(_Strict):
    """A professional force."""

    id: str = Field(description="force id used by routing and people")
    name: str = Field(description="display name")
    kind: str = Field(description="fire, police, urban_management, judicial, safety, property, it, ...")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        return require_known("force kind", value, FORCE_KINDS)


class ResponsibilityConfig(_Strict):
    """Areas and categories a person answers for."""

    grids: list[str] = Field(min_length=1, description="area codes (a code covers its sub-areas)")
    categories: list[str] = Field(default_factory=lambda: ["*"], description="categories, '*' for all")

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: list[str]) -> list[str]:
        return [require_known("category", c, {*CATEGORY_NAMES, "*"}) for c in value]


class PersonConfig(_Strict):
    """Someone in the case flow."""

    id: str = Field(description="person id (the X-Actor header value)")
    name: str = Field(description="display name")
    roles: list[Role] = Field(min_length=1, description="roles held")
    force: str | None = Field(None, description="force id for force members")
    responsibilities: list[ResponsibilityConfig] = Field(default_factory=list, description="what they answer for")


#: What a calendar name may look like (it is stored on each case and shown in its JSON).
CalendarName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
#: Keys an around-the-clock calendar has no use for.
_WORKING_KEYS: Final = frozenset({"hours", "weekend", "holidays", "makeup_days"})
#: Plan step limits count wall-clock time (a 1d limit is 24 h): an emergency keeps no office hours.
_AROUND_THE_CLOCK: Final = WorkingCalendar.around_the_clock(timedelta(0))


class CalendarConfig(_Strict):
    """Working hours, weekend, holidays and make-up working days -- or around the clock."""

    around_the_clock: bool = Field(
        default=False, description="every instant counts (24 h days, no weekend or holidays): for emergencies"
    )
    hours: list[tuple[str, str]] = Field(
        default_factory=lambda: [("09:00", "12:00"), ("13:30", "18:00")], description="working periods HH:MM"
    )
    weekend: list[int] = Field(default_factory=lambda: [5, 6], description="weekday numbers, Monday = 0")
    holidays: list[date] = Field(default_factory=list, description="non-working dates")
    makeup_days: list[date] = Field(default_factory=list, description="weekend dates that are working days")
    utc_offset_hours: float = Field(default=8.0, description="local time zone offset from UTC")

    @field_validator("weekend")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(not 0 <= d <= 6 for d in value):
            raise ValueError("weekdays are 0 (Monday) .. 6 (Sunday)")
        return value

    @model_validator(mode="after")
    def _around_the_clock_alone(self) -> Self:
        clash = sorted(_WORKING_KEYS & self.model_fields_set)
        if self.around_the_clock and clash:
            raise ValueError(f"an around-the-clock calendar takes no {', '.join(clash)}")
        return self

    def build(self) -> WorkingCalendar:
        """The :class:`WorkingCalendar` this config describes."""
        offset = timedelta(hours=self.utc_offset_hours)
        if self.around_the_clock:
            return WorkingCalendar.around_the_clock(offset)

        def parse(text: str) -> timedelta:
            hours, _, minutes = text.partition(":")
            return timedelta(hours=int(hours), minutes=int(minutes or 0))

        return WorkingCalendar(
            periods=tuple((parse(a), parse(b)) for a, b in self.hours),
            weekend=frozenset(self.weekend),
            holidays=frozenset(self.holidays),
            makeup_days=frozenset(self.makeup_days),
            utc_offset=offset,
        )


class SlaRuleConfig(_Strict):
    """Limits for a category/severity; durations like 30m, 4h (working hours) or 2d (working days)."""

    category: str = Field("*", description="category or '*'")
    severity: str = Field("*", description="severity or '*'")
    calendar: str | None = Field(None, description="name of the calendar the limits run on; none = default_calendar")
    dispatch: str | None = Field(None, description="limit from report to dispatch")
    accept: str | None = Field(None, description="limit from dispatch to accept")
    handle: str | None = Field(None, description="limit from accept to feedback")

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        return require_known("category", value, {*CATEGORY_NAMES, "*"})


# Words a plan names, each refused at load unless known (the error names the closest known word).
_PhaseWord = Annotated[str, AfterValidator(lambda v: require_known("plan phase", v, Phase))]
_RoleWord = Annotated[str, AfterValidator(lambda v: require_known("role", v, Role))]
_ForceKindWord = Annotated[str, AfterValidator(lambda v: require_known("force kind", v, FORCE_KINDS))]
_CategoryWord = Annotated[str, AfterValidator(lambda v: require_known("category", v, CATEGORY_NAMES))]
_SeverityWord = Annotated[str, AfterValidator(lambda v: require_known("severity", v, {*Severity, "*"}))]
_EventTypeWord = Annotated[str, AfterValidator(lambda v: require_known("event type", v, EVENT_TYPES))]


def _unique(what: str, names: list[str]) -> None:
    """Refuse a list that names something twice."""
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{what} must be unique: {', '.join(twice)}")


class PlanStepConfig(_Strict):
    """One step of an emergency plan: done by a role or by a force kind, within a time of the report."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="step name (notify, evacuate, ...)")
    phase: _PhaseWord = Field(
        description="warn, act, recover or review (recover and review steps must be done to close)"
    )
    role: _RoleWord | None = Field(None, description="the role that does it (grid_worker, supervisor, ...)")
    force: _ForceKindWord | None = Field(None, description="the force kind that does it (fire, police, ...)")
    within: str = Field(description="due this long after the report, wall-clock: 5m, 2h, 3d")

    @field_validator("within")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value, _AROUND_THE_CLOCK)  # raises SlaError (a ValueError) on nonsense
        return value

    @model_validator(mode="after")
    def _one_doer(self) -> Self:
        if (self.role is None) == (self.force is None):
            raise ValueError("a plan step names either a role or a force")
        return self


class PlanConfig(_Strict):
    """An emergency plan (应急预案) for a category and severity, optionally only for some event types."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="plan id, stored on each case it guides")
    name: str = Field(description="display name (en)")
    name_zh: str = Field(description="display name (zh)")
    category: _CategoryWord = Field(description="the category it is for")
    severity: _SeverityWord = Field("*", description="the severity it is for, '*' for any")
    event_types: list[_EventTypeWord] = Field(
        default_factory=list, description="only cases raised by these event types (empty: any); most specific wins"
    )
    steps: list[PlanStepConfig] = Field(min_length=1, description="the checklist, in order")

    @model_validator(mode="after")
    def _unique_steps(self) -> Self:
        _unique("step names", [s.name for s in self.steps])
        return self

    def build(self) -> Plan:
        """The pure :class:`Plan`."""
        steps = tuple(
            PlanStep(s.name, Phase(s.phase), parse_duration(s.within, _AROUND_THE_CLOCK), s.role, s.force)
            for s in self.steps
        )
        return Plan(self.id, self.name, self.name_zh, self.category, self.severity, frozenset(self.event_types), steps)


class WebhookConfig(_Strict):
    """An external platform that receives signed case events."""

    name: str = Field(pattern=r"^[a-z0-9_-]{1,64}$", description="target name (part of the delivery key)")
    url: str = Field(pattern=r"^https?://", description="where events are POSTed")
    secret: str = Field(min_length=16, description="HMAC-SHA256 key; placeholders are refused")

    @field_validator("secret")
    @classmethod
    def _no_placeholder(cls, value: str) -> str:
        if value.lower().startswith(("changeme", "secret", "xxxx", "placeholder")):
            raise ValueError("replace the placeholder webhook secret")
        return value


class WorkflowConfig(_Strict):
    """The whole cases YAML file."""

    city: CityConfig
    grids: list[AreaConfig] = Field(default_factory=list)
    forces: list[ForceConfig] = Field(default_factory=list)
    people: list[PersonConfig] = Field(default_factory=list)
    routing: dict[str, str] = Field(default_factory=dict, description="category → force id")

    calendar: CalendarConfig | None = Field(
        None, description="the one-calendar form: the default calendar (same as calendars.<default_calendar>)"
    )
    calendars: dict[CalendarName, CalendarConfig] = Field(
        default_factory=dict, description="named calendars SLA rules run on, e.g. always and office"
    )
    default_calendar: CalendarName = Field(
        DEFAULT_CALENDAR, description="calendar of SLA rules that name none and of the built-in limits"
    )
    sla: list[SlaRuleConfig] = Field(default_factory=list)
    plans: list[PlanConfig] = Field(default_factory=list, description="emergency plans, most specific match wins")
    webhooks: list[WebhookConfig] = Field(default_factory=list)

    @field_validator("routing")
    @classmethod
    def _known_routed(cls, value: dict[str, str]) -> dict[str, str]:
        for category in value:
            require_known("category", category, CATEGORY_NAMES)
        return value

    @field_validator("plans")
    @classmethod
    def _unique_plans(cls, value: list[PlanConfig]) -> list[PlanConfig]:
        _unique("plan ids", [p.id for p in value])
        return value


def plan_book(cfg: WorkflowConfig) -> PlanBook:
    """The emergency plans of a config."""
    return PlanBook(tuple(p.build() for p in cfg.plans))


def build_model(cfg: WorkflowConfig) -> GridModel:
    """The validated :class:`GridModel` of a config; raise :class:`ConfigError`."""
    model = GridModel(
        city_code=cfg.city.code,
        city_name=cfg.city.name,
        areas={a.code: Area(a.code, a.name, a.households, a.population, tuple(a.polygon)) for a in cfg.grids},
        forces={f.id: Force(f.id, f.name, f.kind) for f in cfg.forces},
        people={
            p.id: Person(
                p.id,
                p.name,
                frozenset(r.value for r in p.roles),
                p.force,
                tuple(Responsibility(tuple(r.grids), tuple(r.categories)) for r in p.responsibilities),
            )
            for p in cfg.people
        },
        routes=dict(cfg.routing),
    )
    try:
        model.validate()
    except GridError as exc:
        raise ConfigError(exc.key, exc.message) from exc
    return model


def calendar_configs(cfg: WorkflowConfig) -> dict[str, CalendarConfig]:
    """Every named calendar of a config, the default one included; raise :class:`ConfigError`."""
    named = dict(cfg.calendars)
    default = cfg.default_calendar
    if cfg.calendar is not None:
        if default in named:
            raise ConfigError("calendar", f"the default calendar is given twice: here and as calendars.{default}")
        named[default] = cfg.calendar
    elif default not in named:
        if named:
            known = ", ".join(sorted(named))
            raise ConfigError("default_calendar", f"unknown calendar {default!r}; known calendars: {known}")
        named[default] = CalendarConfig()  # no calendar configured: office hours
    return named


def build_calendars(cfg: WorkflowConfig) -> dict[str, WorkingCalendar]:
    """The :class:`WorkingCalendar` of every name; raise :class:`ConfigError`."""
    out: dict[str, WorkingCalendar] = {}
    for name, conf in calendar_configs(cfg).items():
        try:
            out[name] = conf.build()
        except CalendarError as exc:
            path = "calendar" if conf is cfg.calendar else f"calendars.{name}"
            raise ConfigError(path, str(exc)) from exc
    return out


def sla_policy(cfg: WorkflowConfig) -> SlaPolicy:
    """The SLA policy of a config, over its named calendars."""
    calendars = build_calendars(cfg)
    rules = [{k: v for k, v in r.model_dump().items() if v is not None} for r in cfg.sla]
    try:
        return SlaPolicy.from_strings(calendars, rules, default_calendar=cfg.default_calendar)
    except UnknownCalendarError as exc:
        raise ConfigError("sla" if exc.rule is None else f"sla.{exc.rule}.calendar", str(exc)) from exc
    except SlaError as exc:
        raise ConfigError("sla", str(exc)) from exc


def parse_config(data: Any) -> WorkflowConfig:
    """Validate a parsed YAML document; raise :class:`ConfigError` naming the key path."""
    try:
        cfg = WorkflowConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(".".join(str(p) for p in err["loc"]) or "<root>", err["msg"]) from exc
    sla_policy(cfg)  # calendars build and every rule names a known calendar and parses
    return cfg


def load_yaml(text: str) -> WorkflowConfig:
    """Parse YAML text into a :class:`WorkflowConfig`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("<yaml>", str(exc)) from exc
    return parse_config(data)


def load_file(path: Path) -> WorkflowConfig:
    """Read and parse a cases YAML file."""
    return load_yaml(path.read_text(encoding="utf-8"))
