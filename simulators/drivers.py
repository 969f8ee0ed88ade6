"""Simulated drivers ``sim_sensor`` and ``sim_kiosk``: they plug into the real edge agent.

Both are deterministic for a seed and the sequence of ``now_ms`` they are polled
with. Scenarios reach a running instance through :func:`find_sim` by the
``handle`` its config names (the community generator uses the device id), then
inject faults at runtime: ``trigger(name)`` forces an alarm condition (smoke,
paper_out...) and ``release(name)`` ends it; sensors also take ``stuck``,
``spike`` and ``drift`` faults on a metric. The kiosk lives in
:mod:`simulators.sim_kiosk` (its own entry in the ``gridsentinel.drivers`` entry points).
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from edge.drivers import DriverConfigBase, DriverEvent, Sample, register_driver
from edge.drivers.conditions import ConditionTracker, alarm
from edge.wire import MetricValue
from simulators.profiles import PROFILES, AlarmModel, MetricModel, Profile, metric_seed
from simulators.signals import Clamp, Drift, Pulse, Signal, StuckAt, Sum, uniform

logger = logging.getLogger(__name__)

ProfileName = Literal["env", "smoke", "water", "manhole", "charger", "hydrant", "bin", "gas"]
assert set(ProfileName.__args__) == set(PROFILES)  # type: ignore[attr-defined]


class UnknownTriggerError(KeyError):
    """``trigger``/``release``/a fault named something the simulated device does not have."""


class SimDriver(Protocol):
    """What scenarios can do to any simulated driver found with :func:`find_sim`."""

    def trigger(self, name: str, duration_s: float | None = None) -> None:
        """Force alarm condition ``name`` from now on (for ``duration_s``, or until released)."""
        ...

    def release(self, name: str) -> None:
        """End a forced condition."""
        ...


_LIVE: weakref.WeakValueDictionary[str, SimDriver] = weakref.WeakValueDictionary()
_LIVE_LOCK = threading.Lock()


def remember(handle: str, driver: SimDriver) -> None:
    """Make ``driver`` findable as ``handle`` (no-op for an empty handle)."""
    if handle:
        with _LIVE_LOCK:
            _LIVE[handle] = driver


def find_sim(handle: str) -> SimDriver:
    """The live simulated driver whose config has ``handle``; raises KeyError if none is running."""
    with _LIVE_LOCK:
        driver = _LIVE.get(handle)
    if driver is None:
        raise KeyError(f"no live simulated driver with handle {handle!r}")
    return driver


class FaultSpec(BaseModel):
    """A fault scheduled from config, relative to the first poll."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["stuck", "spike", "drift"] = Field(description="stuck: freeze; spike: add magnitude; drift: ramp.")
    metric: str = Field(description="Metric of the profile the fault applies to.")
    after_s: float = Field(default=0.0, ge=0, description="Seconds after the first poll when the fault starts.")
    magnitude: float = Field(default=0.0, description="Spike height added to the metric (spike only).")
    duration_s: float = Field(default=60.0, gt=0, description="How long a spike lasts, in seconds (spike only).")
    rate_per_h: float = Field(default=0.0, description="Drift per hour from the start time (drift only).")


class SimSensorConfig(DriverConfigBase):
    """Config of a simulated sensor of one profile."""

    type: Literal["sim_sensor"] = Field(description="Driver key.")
    profile: ProfileName = Field(description="Which sensor: " + ", ".join(sorted(PROFILES)) + ".")
    seed: int = Field(default=0, ge=0, description="Seed: the same seed and poll times give the same readings.")
    handle: str = Field(default="", max_length=64, description="Name scenarios use to find this instance (find_sim).")
    alarm_rate_per_day: float = Field(
        default=0.0, ge=0, le=1000, description="Spontaneous alarms per alarm type per day."
    )
    alarm_duration_s: float = Field(default=300.0, gt=0, description="How long a spontaneous alarm lasts, in seconds.")
    faults: tuple[FaultSpec, ...] = Field(default=(), description="Faults scheduled relative to the first poll.")


class SimSensorDriver:
    """A simulated sensor: seeded signals per metric, local alarms, runtime fault injection."""

    def __init__(self, config: SimSensorConfig) -> None:
        self.config = config
        self.profile: Profile = PROFILES[config.profile]
        self._models = {m.name: m for m in self.profile.metrics}
        self._alarms: dict[str, AlarmModel] = {a.type: a for a in self.profile.alarms}
        for fault in config.faults:
            self._metric(fault.metric)
        self._lock = threading.Lock()
        self._signals: dict[str, Signal] = {}
        self._pending: dict[str, float] = {}  # alarm type -> duration, resolved at the next poll
        self._forced: dict[str, float] = {}  # alarm type -> end (Unix seconds, inf = until released)
        self._resolved: set[str] = set()  # alarm types released while their own signal still holds them
        self._last_t: float | None = None
        self._t0: float | None = None
        self._tracker = ConditionTracker()
        remember(config.handle, self)

    def _metric(self, name: str) -> MetricModel:
        model = self._models.get(name)
        if model is None:
            raise UnknownTriggerError(
                f"profile {self.profile.name!r} has no metric {name!r}; has {sorted(self._models)}"
            )
        return model

    def _alarm(self, name: str) -> AlarmModel:
        found = self._alarms.get(name) or next((a for a in self._alarms.values() if a.metric == name), None)
        if found is None:
            raise UnknownTriggerError(
                f"profile {self.profile.name!r} has no alarm {name!r}; has {sorted(self._alarms)}"
            )
        return found

    def _start(self, t_s: float, *, scheduled: bool = True) -> None:
        if self._t0 is None:
            self._t0 = t_s  # the device's "install time": batteries drain and scheduled faults count from here
        for model in self.profile.metrics:
            self._signals[model.name] = model.build(metric_seed(self.config.seed, model.name), self._t0)
        if scheduled:
            for fault in self.config.faults:
                self._apply(fault, self._t0 + fault.after_s)

    def _apply(self, fault: FaultSpec, at_s: float) -> None:
        base = self._signals[fault.metric]
        if fault.kind == "stuck":
            self._signals[fault.metric] = StuckAt(base, at_s)
        elif fault.kind == "spike":
            self._signals[fault.metric] = Sum((base, Pulse(fault.magnitude, at_s, at_s + fault.duration_s)))
        else:
            self._signals[fault.metric] = Sum((base, Drift(fault.rate_per_h, at_s)))

    def _now(self, now_s: float | None) -> float:
        if now_s is not None:
            return now_s
        if self._last_t is None:
            raise UnknownTriggerError("the driver has not been polled yet; pass now_s")
        return self._last_t

    def stuck(self, metric: str, now_s: float | None = None) -> None:
        """Freeze ``metric`` at its value of ``now_s`` (default: the last poll)."""
        self.inject(FaultSpec(kind="stuck", metric=metric), now_s)

    def spike(self, metric: str, magnitude: float, duration_s: float = 30.0, now_s: float | None = None) -> None:
        """Add ``magnitude`` to ``metric`` for ``duration_s`` from ``now_s``."""
        self.inject(FaultSpec(kind="spike", metric=metric, magnitude=magnitude, duration_s=duration_s), now_s)

    def drift(self, metric: str, rate_per_h: float, now_s: float | None = None) -> None:
        """Make ``metric`` drift by ``rate_per_h`` per hour from ``now_s``."""
        self.inject(FaultSpec(kind="drift", metric=metric, rate_per_h=rate_per_h), now_s)

    def inject(self, fault: FaultSpec, now_s: float | None = None) -> None:
        """Apply ``fault`` starting ``fault.after_s`` after ``now_s`` (default: the last poll)."""
        self._metric(fault.metric)
        with self._lock:
            at_s = self._now(now_s)
            if not self._signals:
                self._start(at_s)
            self._apply(fault, at_s + fault.after_s)
        logger.info("sim %s: %s fault on %s", self.config.handle or self.profile.name, fault.kind, fault.metric)

    def clear_faults(self) -> None:
        """Remove every runtime and scheduled fault; readings return to the healthy signals."""
        with self._lock:
            self._signals.clear()
            if self._t0 is not None:
                self._start(self._t0, scheduled=False)

    def trigger(self, name: str, duration_s: float | None = None) -> None:
        """Force the alarm ``name`` (an alarm type or its metric) from the next poll on."""
        found = self._alarm(name)
        with self._lock:
            self._pending[found.type] = math.inf if duration_s is None else duration_s

    def release(self, name: str) -> None:
        """End the alarm ``name``: its cause was dealt with, so the next poll reads past the clearing level
        (:attr:`~simulators.profiles.AlarmModel.resolved`) for as long as the metric's own signal would
        still hold the alarm. Without that, a bin released in the evening, when its natural fill is above
        the clearing level, would stay full until the morning emptying."""
        found = self._alarm(name)
        with self._lock:
            self._forced.pop(found.type, None)
            self._pending.pop(found.type, None)
            self._resolved.add(found.type)

    def _spontaneous(self, index: int, t_s: float) -> bool:
        rate = self.config.alarm_rate_per_day
        if rate <= 0:
            return False
        duration = self.config.alarm_duration_s
        window = math.floor(t_s / duration)
        return uniform(self.config.seed, index, window, 99) < rate * duration / 86_400.0

    def poll(self, now_ms: int) -> Sample:
        """Readings of every metric at ``now_ms`` plus alarm changes."""
        t_s = now_ms / 1000.0
        with self._lock:
            if not self._signals:
                self._start(t_s)
            self._last_t = t_s
            for name, duration in self._pending.items():
                self._forced[name] = t_s + duration
            self._pending.clear()
            values: dict[str, float] = {}
            for model in self.profile.metrics:
                values[model.name] = Clamp(self._signals[model.name], model.low, model.high).at(t_s)
            for index, spec in enumerate(self.profile.alarms):
                if t_s < self._forced.get(spec.type, -math.inf) or self._spontaneous(index, t_s):
                    values[spec.metric] = spec.forced
                elif spec.type in self._resolved:
                    if spec.holds(values[spec.metric], active=True):
                        values[spec.metric] = spec.resolved
                    else:  # the signal itself is past the clearing level now
                        self._resolved.discard(spec.type)
            metrics: dict[str, MetricValue] = {}
            for model in self.profile.metrics:
                value = round(values[model.name], model.digits)
                metrics[model.name] = int(value) if model.digits == 0 else value
            current: dict[str, DriverEvent] = {}
            for spec in self.profile.alarms:
                value = values[spec.metric]
                if spec.holds(value, self._tracker.is_active(spec.type)):
                    current[spec.type] = alarm(spec.type, spec.severity, f"{spec.metric}={value:g}", value)
            events = self._tracker.update(current)
        return Sample(metrics, events)

    def close(self) -> None:
        """Nothing to release."""


register_driver("sim_sensor", SimSensorConfig, SimSensorDriver, "simulated sensor (env, smoke, water, manhole...)")

__all__ = ["SimSensorConfig", "SimSensorDriver", "UnknownTriggerError", "find_sim"]
