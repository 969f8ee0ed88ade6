"""The pure rule engine: readings, events and health changes + state -> incident candidates.

No I/O and no clock of its own: every input carries its time, and :meth:`RuleEngine.tick`
advances time-driven rules (durations, absence, offline, verification). The whole
state serialises with :meth:`RuleEngine.dump_state` so it survives a hub restart.
Historical (replayed) readings and events never raise anything. Not thread-safe:
the caller holds one lock around it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple, Protocol, TypeAlias

from edge.wire import MetricValue
from hub.ingest.sinks import DeviceRef
from hub.rules.models import (
    AbsenceRule,
    CompositeRule,
    DataLossRule,
    EventRule,
    OfflineRule,
    RateRule,
    Rule,
    ThresholdRule,
    compare,
)
from hub.rules.state import (
    STATE_VERSION,
    Candidate,
    KeyState,
    device_candidate,
    device_from_dict,
    device_to_dict,
    grid_candidate,
    grid_subject,
    state_key,
)

_MAX_RATE_SAMPLES = 512
#: Devices whose reading plan is cached (cleared when full, and whenever the rules change).
PLAN_CACHE_MAX: Final = 100_000
#: (absence rules, metric -> rules) in scope for one device.
_ReadingPlan: TypeAlias = "tuple[tuple[AbsenceRule, ...], dict[str, tuple[Rule, ...]]]"


class Reading(Protocol):
    """One telemetry point: device time (ms) and its metrics."""

    @property
    def ts(self) -> int: ...

    @property
    def metrics(self) -> Mapping[str, MetricValue]: ...


class _Reading(NamedTuple):
    ts: int
    metrics: Mapping[str, MetricValue]


class RuleEngine:
    """Evaluates a rule set; holds per-(rule, subject) state."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._keys: dict[str, KeyState] = {}
        self._devices: dict[str, DeviceRef] = {}
        #: Devices whose health is offline: their silence is already an offline incident, not an absence one.
        self._down: set[str] = set()
        self.set_rules(rules)

    # ------------------------------------------------------------------ rules

    def set_rules(self, rules: Iterable[Rule]) -> None:
        """Replace the rule set; state of rules that still exist (same kind) is kept."""
        old_kinds = {r.id: r.kind for r in getattr(self, "rules", {}).values()}
        self._scope_cache: dict[tuple[str, str], tuple[DeviceRef, bool]] = {}
        self._plans: dict[str, tuple[DeviceRef, _ReadingPlan]] = {}
        self.rules: dict[str, Rule] = {r.id: r for r in rules if r.enabled}
        self._by_metric: dict[str, list[Rule]] = defaultdict(list)
        self._absence: list[AbsenceRule] = []
        self._by_event: dict[str, list[EventRule | CompositeRule]] = defaultdict(list)
        self._offline: list[OfflineRule] = []
        self._data_loss: list[DataLossRule] = []
        for rule in self.rules.values():
            if isinstance(rule, (ThresholdRule, RateRule)):
                self._by_metric[rule.metric].append(rule)
            elif isinstance(rule, AbsenceRule):
                self._absence.append(rule)
            elif isinstance(rule, EventRule):
                for etype in rule.event_types:
                    self._by_event[etype].append(rule)
            elif isinstance(rule, OfflineRule):
                self._offline.append(rule)
            elif isinstance(rule, DataLossRule):
                self._data_loss.append(rule)
            elif rule.metric is not None:
                self._by_metric[rule.metric].append(rule)
            else:
                for etype in rule.event_types:
                    self._by_event[etype].append(rule)
        # state of an edited rule is kept (an open incident still clears) unless its kind changed
        kept = {i for i, r in self.rules.items() if old_kinds.get(i, r.kind) == r.kind}
        self._keys = {k: v for k, v in self._keys.items() if k.split("|", 1)[0] in kept}

    # ------------------------------------------------------------------ state

    def dump_state(self) -> dict[str, Any]:
        """Everything needed to resume after a restart, as JSON-ready data."""
        keys: dict[str, Any] = {}
        for key, st in self._keys.items():
            # idle threshold/event keys restart fine from scratch; absence keys carry the last-seen time
            if st.worth_keeping() or isinstance(self.rules.get(key.split("|", 1)[0]), AbsenceRule):
                keys[key] = st.to_dict()
        subjects = {k.split("|", 1)[1] for k in keys}
        devices = {d: device_to_dict(ref) for d, ref in self._devices.items() if d in subjects}
        return {"version": STATE_VERSION, "keys": keys, "devices": devices, "down": sorted(self._down)}

    def load_state(self, raw: Mapping[str, Any]) -> None:
        """Resume from :meth:`dump_state` output (unknown versions are ignored)."""
        if raw.get("version") != STATE_VERSION:
            return
        self._devices = {d: device_from_dict(v) for d, v in raw.get("devices", {}).items()}
        self._down = set(raw.get("down", []))
        keys = raw.get("keys", {})
        self._keys = {k: KeyState.from_dict(v) for k, v in keys.items() if k.split("|", 1)[0] in self.rules}

    def key_state(self, rule_id: str, subject: str) -> KeyState | None:
        """The state of one key (tests and the API look at it)."""
        return self._keys.get(state_key(rule_id, subject))

    def device(self, device_id: str) -> DeviceRef | None:
        """The last known reference of a device the engine has seen."""
        return self._devices.get(device_id)

    def open_keys(self) -> list[tuple[str, str]]:
        """(rule id, subject) of every key the engine believes open."""
        return [(k.split("|", 1)[0], k.split("|", 1)[1]) for k, v in self._keys.items() if v.is_open]

    def _state(self, rule_id: str, subject: str) -> KeyState:
        key = state_key(rule_id, subject)
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = KeyState()
        return st

    # ----------------------------------------------------------------- inputs

    def on_reading(
        self, device: DeviceRef, ts_ms: int, metrics: Mapping[str, MetricValue], received_ms: int, hist: bool = False
    ) -> list[Candidate]:
        """One telemetry point."""
        return self.on_points(device, (_Reading(ts_ms, metrics),), received_ms, hist)

    def on_points(
        self,
        device: DeviceRef,
        points: Iterable[Reading],
        received_ms: int,
        hist: bool = False,
    ) -> list[Candidate]:
        """The points of one telemetry message in order (``edge.wire.Point`` is a :class:`Reading`)."""
        self._devices[device.device_id] = device
        if hist:
            return []  # replayed readings are stored, but a stale threshold pages nobody
        plan = self._reading_plan(device)
        if not plan[0] and not plan[1]:
            return []  # nothing watches this device's readings
        out: list[Candidate] = []
        for point in points:
            out += self._evaluate(device, point.ts, point.metrics, plan, received_ms)
        return out

    def _evaluate(
        self,
        device: DeviceRef,
        ts_ms: int,
        metrics: Mapping[str, MetricValue],
        plan: _ReadingPlan,
        received_ms: int,
    ) -> list[Candidate]:
        """One reading against the rules of the device's plan."""
        absences, by_metric = plan
        out: list[Candidate] = []
        for absence in absences:
            if absence.metric is None or absence.metric in metrics:
                out += self._absence_seen(absence, device, received_ms)
        for metric, raw in metrics.items():
            for rule in by_metric.get(metric, ()):
                value = float(raw)
                if isinstance(rule, ThresholdRule):
                    out += self._threshold(rule, device, ts_ms, value, received_ms)
                elif isinstance(rule, RateRule):
                    out += self._rate(rule, device, ts_ms, value)
                elif isinstance(rule, CompositeRule) and rule.op is not None and rule.value is not None:
                    out += self._composite(rule, device, compare(value, rule.op, rule.value), received_ms, value)
        return out

    def on_event(
        self,
        device: DeviceRef,
        ts_ms: int,
        event_type: str,
        active: bool,
        received_ms: int,
        *,
        hist: bool = False,
        event_id: str | None = None,
        value: float | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> list[Candidate]:
        """One device event (raised or cleared).

        A historical event (raised or cleared while the device was cut off, replayed from its buffer)
        is judged like a live one: an alarm is an alarm however late it arrives. Its candidates carry
        ``hist`` and the hub's receive time in their detail, and a historical clear ends the incident at
        once (the clear hold is for live flapping; the replay already says how it ended). Holding a
        historical open back until the replay shows whether it ended is the sink's job.
        """
        self._devices[device.device_id] = device
        if hist:
            detail = dict(detail or {}) | {"hist": True, "received_ms": received_ms}
        out: list[Candidate] = []
        for rule in self._by_event.get(event_type, ()):
            if not self._in_scope(rule, device):
                continue
            if isinstance(rule, CompositeRule):
                out += self._composite(rule, device, active, received_ms, value)
                continue
            st = self._state(rule.id, device.device_id)
            extra = dict(detail or {}) | {"event_type": event_type}
            if active:
                if st.is_open:
                    flap = st.phase == "clearing"
                    st.phase, st.last_value = "active", value
                    out.append(
                        device_candidate(
                            "update",
                            rule,
                            device,
                            ts_ms,
                            value,
                            repeat=not flap,
                            flap=flap,
                            event_id=event_id,
                            detail=extra,
                        )
                    )
                else:
                    out.append(self._open(rule, st, device, ts_ms, value, event_id=event_id, detail=extra))
            elif rule.clear_on_event and hist and st.is_open:
                st.last_value = value
                out.append(self._clear(rule, st, device, ts_ms, detail=extra))
            elif rule.clear_on_event and st.phase == "active":
                out += self._begin_clear(rule, st, device, ts_ms, 0.0)
        return out

    def on_health(self, device: DeviceRef, new: str, at_ms: int) -> list[Candidate]:
        """The registry's health state for ``device`` changed to ``new``."""
        self._devices[device.device_id] = device
        if new == "offline":
            self._down.add(device.device_id)
        else:
            self._down.discard(device.device_id)
        out: list[Candidate] = []
        for rule in self._offline:
            if not self._in_scope(rule, device):
                continue
            st = self._state(rule.id, device.device_id)
            if new in rule.states:
                if st.phase == "clearing":
                    st.phase = "active"
                    out.append(device_candidate("update", rule, device, at_ms, None, flap=True, detail={"health": new}))
                elif st.phase == "idle":
                    st.phase, st.since_ms = "pending", at_ms
                    if rule.after_s == 0:
                        out.append(self._open(rule, st, device, at_ms, None, detail={"health": new}))
            elif st.phase == "pending":
                st.phase = "idle"
            elif st.phase == "active":
                out += self._begin_clear(rule, st, device, at_ms, 0.0)
        return out

    def on_data_loss(self, device: DeviceRef, first: int, last: int, count: int, at_ms: int) -> list[Candidate]:
        """Ingest gave up on messages ``first..last`` of ``device``."""
        self._devices.setdefault(device.device_id, device)
        out: list[Candidate] = []
        detail = {"first": first, "last": last, "count": count}
        for rule in self._data_loss:
            if not self._in_scope(rule, device):
                continue
            st = self._state(rule.id, device.device_id)
            if st.is_open:
                out.append(device_candidate("update", rule, device, at_ms, float(count), repeat=True, detail=detail))
            else:
                out.append(self._open(rule, st, device, at_ms, float(count), detail=detail))
        return out

    def assume_open(self, rule_id: str, subject: str, device: DeviceRef | None, since_ms: int) -> bool:
        """Rebuild: the state DB holds an open incident for this key, so the engine treats it as raised."""
        if rule_id not in self.rules:
            return False
        if device is not None:
            self._devices.setdefault(device.device_id, device)
        st = self._state(rule_id, subject)
        if st.is_open:
            return False
        st.phase, st.since_ms = "active", since_ms
        return True

    def forget(self, rule_id: str, subject: str) -> None:
        """Drop the state of a key (an operator closed its incident by hand)."""
        self._keys.pop(state_key(rule_id, subject), None)

    # ------------------------------------------------------------------- time

    def tick(self, now_ms: int) -> list[Candidate]:
        """Advance time-driven rules to hub time ``now_ms``."""
        out: list[Candidate] = []
        for key, st in list(self._keys.items()):
            rule_id, subject = key.split("|", 1)
            rule = self.rules.get(rule_id)
            if rule is None:
                continue
            if isinstance(rule, CompositeRule):
                out += self._composite_eval(rule, subject, st, now_ms)
                continue
            device = self._devices.get(subject)
            if device is None:
                continue
            dev_now = now_ms - st.skew_ms
            if isinstance(rule, OfflineRule) and st.phase == "pending" and now_ms - st.since_ms >= rule.after_s * 1000:
                out.append(self._open(rule, st, device, now_ms, None, detail={"down_since_ms": st.since_ms}))
            elif isinstance(rule, ThresholdRule) and st.phase == "pending":
                if dev_now - st.since_ms >= rule.for_s * 1000:
                    out.append(self._open(rule, st, device, dev_now, st.last_value))
            elif (
                isinstance(rule, AbsenceRule)
                and st.phase == "idle"
                and st.last_ts
                and subject not in self._down
                and now_ms - st.last_ts >= rule.after_s * 1000
            ):
                out.append(self._open(rule, st, device, now_ms, None, detail={"last_seen_ms": st.last_ts}))
            if st.phase == "clearing":
                hold = self._clear_hold(rule, rule.clear_for_s if isinstance(rule, ThresholdRule) else 0.0)
                t = dev_now if isinstance(rule, (ThresholdRule, RateRule)) else now_ms
                if t - st.since_ms >= hold:
                    out.append(self._clear(rule, st, device, t))
        return out

    # ------------------------------------------------------------ rule kinds

    def _threshold(
        self, rule: ThresholdRule, device: DeviceRef, ts: int, value: float, received_ms: int
    ) -> list[Candidate]:
        st = self._state(rule.id, device.device_id)
        if ts < st.last_ts:
            return []  # out of order: the condition is judged on device time
        st.last_ts, st.last_value, st.skew_ms = ts, value, received_ms - ts
        if st.phase in ("idle", "pending"):
            if not rule.raises(value):
                st.phase = "idle"
                return []
            if st.phase == "idle":
                st.phase, st.since_ms = "pending", ts
            if ts - st.since_ms >= rule.for_s * 1000:
                return [self._open(rule, st, device, ts, value)]
            return []
        if rule.clears(value):
            if st.phase == "active":
                return self._begin_clear(rule, st, device, ts, rule.clear_for_s)
            if ts - st.since_ms >= self._clear_hold(rule, rule.clear_for_s):
                return [self._clear(rule, st, device, ts)]
            return []
        if st.phase == "clearing":
            st.phase = "active"
            if rule.raises(value):
                return [device_candidate("update", rule, device, ts, value, flap=True)]
        return []

    def _rate(self, rule: RateRule, device: DeviceRef, ts: int, value: float) -> list[Candidate]:
        st = self._state(rule.id, device.device_id)
        if ts < st.last_ts:
            return []
        st.last_ts, st.last_value = ts, value
        horizon = ts - rule.window_s * 1000
        st.samples = [*[s for s in st.samples if s[0] >= horizon][-_MAX_RATE_SAMPLES:], (ts, value)]
        values = [v for _, v in st.samples]
        rise, fall = value - min(values), max(values) - value
        hit = {"rise": rise >= rule.change, "fall": fall >= rule.change, "any": max(rise, fall) >= rule.change}
        change = rise if rise >= fall else -fall
        if hit[rule.direction]:
            if st.phase == "clearing":
                st.phase = "active"
                return [device_candidate("update", rule, device, ts, change, flap=True)]
            if st.phase == "active":
                return []
            return [self._open(rule, st, device, ts, change)]
        if st.phase == "active":
            return self._begin_clear(rule, st, device, ts, 0.0)
        if st.phase == "clearing" and ts - st.since_ms >= self._clear_hold(rule, 0.0):
            return [self._clear(rule, st, device, ts)]
        return []

    def _absence_seen(self, rule: AbsenceRule, device: DeviceRef, received_ms: int) -> list[Candidate]:
        st = self._state(rule.id, device.device_id)
        st.last_ts = max(st.last_ts, received_ms)
        if st.phase == "active":
            return self._begin_clear(rule, st, device, received_ms, 0.0)
        return []

    def _composite(
        self, rule: CompositeRule, device: DeviceRef, agrees: bool, received_ms: int, value: float | None
    ) -> list[Candidate]:
        if device.grid is None:
            return []
        subject = grid_subject(device.grid)
        st = self._state(rule.id, subject)
        if device.device_id not in st.members:
            st.members.append(device.device_id)
        if agrees:
            st.agree[device.device_id] = received_ms
        else:
            st.agree.pop(device.device_id, None)
        return self._composite_eval(rule, subject, st, received_ms)

    def _composite_eval(self, rule: CompositeRule, subject: str, st: KeyState, now_ms: int) -> list[Candidate]:
        horizon = now_ms - rule.within_s * 1000
        st.agree = {d: t for d, t in st.agree.items() if t >= horizon}
        grid = subject.split(":", 1)[1]
        first = self._devices.get(next(iter(st.members), ""))
        site = first.site if first is not None else ""
        detail = {"agreeing": sorted(st.agree), "of_devices": len(st.members), "min_devices": rule.min_devices}
        n = len(st.agree)
        if n >= rule.min_devices:
            if st.phase == "clearing":
                st.phase = "active"
                return [
                    grid_candidate(
                        "update", rule, subject=subject, site=site, grid=grid, ts=now_ms, n=n, detail=detail, flap=True
                    )
                ]
            if st.phase in ("idle", "pending"):
                flap = self._is_flap(rule, st, now_ms)
                st.phase = "active"
                return [
                    grid_candidate(
                        "open", rule, subject=subject, site=site, grid=grid, ts=now_ms, n=n, detail=detail, flap=flap
                    )
                ]
            return []
        if st.phase == "active":
            st.phase, st.since_ms = "clearing", now_ms
        if st.phase == "clearing" and now_ms - st.since_ms >= self._clear_hold(rule, 0.0):
            st.phase, st.last_clear_ms = "idle", now_ms
            return [grid_candidate("clear", rule, subject=subject, site=site, grid=grid, ts=now_ms, n=n, detail=detail)]
        return []

    # ------------------------------------------------------------- lifecycle

    @staticmethod
    def _clear_hold(rule: Rule, base_s: float) -> float:
        return (base_s + (rule.verify_s if rule.clear_mode == "verify" else 0.0)) * 1000

    @staticmethod
    def _is_flap(rule: Rule, st: KeyState, ts: int) -> bool:
        return st.last_clear_ms is not None and ts - st.last_clear_ms <= rule.flap_window_s * 1000

    def _open(
        self,
        rule: Rule,
        st: KeyState,
        device: DeviceRef,
        ts: int,
        value: float | None,
        *,
        event_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Candidate:
        flap = self._is_flap(rule, st, ts)
        st.phase, st.since_ms = "active", ts
        return device_candidate("open", rule, device, ts, value, flap=flap, event_id=event_id, detail=detail)

    def _begin_clear(self, rule: Rule, st: KeyState, device: DeviceRef, ts: int, base_s: float) -> list[Candidate]:
        st.phase, st.since_ms = "clearing", ts
        if self._clear_hold(rule, base_s) <= 0:
            return [self._clear(rule, st, device, ts)]
        return []

    def _clear(
        self, rule: Rule, st: KeyState, device: DeviceRef, ts: int, *, detail: Mapping[str, Any] | None = None
    ) -> Candidate:
        st.phase, st.last_clear_ms, st.since_ms = "idle", ts, ts
        return device_candidate("clear", rule, device, ts, st.last_value, detail=detail)

    def ignores_readings(self, device: DeviceRef) -> bool:
        """True when :meth:`on_points` for ``device`` would change nothing and return nothing: the
        device is known (the same ref) and its cached plan is empty. Reads only, so callers may skip
        their lock: a rule change replaces the plan cache, and a reading racing it is just ordered
        before it."""
        if self._devices.get(device.device_id) is not device:
            return False
        hit = self._plans.get(device.device_id)
        return hit is not None and hit[0] is device and not hit[1][0] and not hit[1][1]

    def _reading_plan(self, device: DeviceRef) -> _ReadingPlan:
        """The absence rules and the metric -> rules map in scope for ``device`` (cached per device: a
        reading of a device no rule watches costs two dict lookups)."""
        hit = self._plans.get(device.device_id)
        if hit is not None and (hit[0] is device or hit[0] == device):
            return hit[1]
        absences = tuple(r for r in self._absence if self._in_scope(r, device))
        by_metric: dict[str, tuple[Rule, ...]] = {}
        for metric, rules in self._by_metric.items():
            mine = tuple(r for r in rules if self._in_scope(r, device))
            if mine:
                by_metric[metric] = mine
        plan = (absences, by_metric)
        if len(self._plans) >= PLAN_CACHE_MAX:
            self._plans.clear()
        self._plans[device.device_id] = (device, plan)
        return plan

    def _in_scope(self, rule: Rule, device: DeviceRef) -> bool:
        # cached per (rule, device): scope checks were half the cost of a reading
        key = (rule.id, device.device_id)
        hit = self._scope_cache.get(key)
        if hit is not None and (hit[0] is device or hit[0] == device):
            return hit[1]
        ok = rule.scope.matches(device.kind, device.site, device.grid, device.labels)
        self._scope_cache[key] = (device, ok)
        return ok
