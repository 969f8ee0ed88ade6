"""The pure rule engine against simple reference models (hypothesis)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.wire import DeviceKind, Point
from hub.ingest.sinks import DeviceRef
from hub.rules.engine import RuleEngine
from hub.rules.models import AbsenceRule, CompositeRule, EventRule, OfflineRule, RateRule, Rule, ThresholdRule
from hub.rules.state import Candidate

T0 = 1_700_000_000_000
DEV = DeviceRef("s1", "site-a", DeviceKind.SENSOR, "110101001001001")


def threshold(**kw: object) -> ThresholdRule:
    base: dict[str, object] = {
        "id": "hot",
        "metric": "temp_c",
        "op": ">",
        "value": 60,
        "for_s": 30,
        "clear_value": 55,
        "clear_for_s": 60,
        "category": "fire_safety",
        "severity": "major",
        "flap_window_s": 0,
    }
    return ThresholdRule.model_validate(base | kw)


def reference(rule: ThresholdRule, readings: list[tuple[int, float]]) -> list[tuple[str, int]]:
    """Threshold + duration + hysteresis, written the obvious way."""
    out: list[tuple[str, int]] = []
    active = False
    raise_since: int | None = None
    clear_since: int | None = None

    def clears(v: float) -> bool:
        # no hysteresis: clears as soon as the raise condition fails; else strictly past clear_value
        return v <= rule.value if rule.clear_value is None else v < rule.clear_value

    for ts, v in readings:
        if not active:
            if v > rule.value:
                raise_since = ts if raise_since is None else raise_since
                if ts - raise_since >= rule.for_s * 1000:
                    active, clear_since = True, None
                    out.append(("open", ts))
            else:
                raise_since = None
        elif clears(v):
            clear_since = ts if clear_since is None else clear_since
            if ts - clear_since >= rule.clear_for_s * 1000:
                active, raise_since = False, None
                out.append(("clear", ts))
        else:
            clear_since = None
    return out


readings_strategy = st.lists(
    st.tuples(st.integers(0, 20_000), st.sampled_from([40.0, 54.9, 55.0, 57.0, 60.0, 60.1, 75.0])),
    max_size=60,
)


def as_series(steps: list[tuple[int, float]]) -> list[tuple[int, float]]:
    ts, out = T0, []
    for gap, v in steps:
        ts += gap
        out.append((ts, v))
    return out


@settings(max_examples=300, deadline=None)
@given(
    steps=readings_strategy,
    for_s=st.sampled_from([0, 5, 30]),
    clear_for_s=st.sampled_from([0, 10, 60]),
    clear_value=st.sampled_from([None, 55.0]),
)
def test_threshold_agrees_with_reference(
    steps: list[tuple[int, float]], for_s: int, clear_for_s: int, clear_value: float | None
) -> None:
    rule = threshold(for_s=for_s, clear_for_s=clear_for_s, clear_value=clear_value)
    engine = RuleEngine([rule])
    series = as_series(steps)
    got = [(c.action, c.ts_ms) for ts, v in series for c in engine.on_reading(DEV, ts, {"temp_c": v}, ts)]
    # flap updates on the open incident are extra information, not transitions
    assert [g for g in got if g[0] != "update"] == reference(rule, series)


@settings(max_examples=100, deadline=None)
@given(steps=readings_strategy, cut=st.integers(0, 60))
def test_state_survives_restart_anywhere(steps: list[tuple[int, float]], cut: int) -> None:
    rule = threshold()
    series = as_series(steps)
    whole = RuleEngine([rule])
    expected = [(c.action, c.ts_ms) for ts, v in series for c in whole.on_reading(DEV, ts, {"temp_c": v}, ts)]
    first = RuleEngine([rule])
    got = [(c.action, c.ts_ms) for ts, v in series[:cut] for c in first.on_reading(DEV, ts, {"temp_c": v}, ts)]
    second = RuleEngine([rule])
    second.load_state(json.loads(json.dumps(first.dump_state())))
    got += [(c.action, c.ts_ms) for ts, v in series[cut:] for c in second.on_reading(DEV, ts, {"temp_c": v}, ts)]
    assert got == expected


def count_incidents(cands: list[Candidate]) -> tuple[int, int]:
    """Apply candidates to a minimal incident store: (incidents created, total flaps)."""
    incidents = flaps = 0
    for c in cands:
        if c.action == "open" and not c.flap:
            incidents += 1
        if c.flap:
            flaps += 1
    return incidents, flaps


@settings(max_examples=50, deadline=None)
@given(cycles=st.integers(2, 60), period_s=st.integers(1, 10), mode=st.sampled_from(["immediate", "verify"]))
def test_flapping_gives_one_incident_with_flap_count(cycles: int, period_s: int, mode: str) -> None:
    rule = threshold(for_s=0, clear_for_s=0, flap_window_s=300, clear_mode=mode, verify_s=30)
    engine = RuleEngine([rule])
    cands: list[Candidate] = []
    ts = T0
    for _ in range(cycles):
        cands += engine.on_reading(DEV, ts, {"temp_c": 70.0}, ts)
        ts += period_s * 1000
        cands += engine.on_reading(DEV, ts, {"temp_c": 40.0}, ts)
        ts += period_s * 1000
    assert count_incidents(cands) == (1, cycles - 1)


def test_flap_outside_window_is_a_new_incident() -> None:
    rule = threshold(for_s=0, clear_for_s=0, flap_window_s=60)
    engine = RuleEngine([rule])
    cands = []
    for ts, v in [(T0, 70.0), (T0 + 1000, 40.0), (T0 + 120_000, 70.0)]:
        cands += engine.on_reading(DEV, ts, {"temp_c": v}, ts)
    assert [(c.action, c.flap) for c in cands] == [("open", False), ("clear", False), ("open", False)]


def test_duration_fires_on_tick_without_new_reading() -> None:
    engine = RuleEngine([threshold()])
    assert engine.on_reading(DEV, T0, {"temp_c": 61.0}, T0 + 500) == []
    assert engine.tick(T0 + 29_000) == []
    [cand] = engine.tick(T0 + 30_500)
    assert (cand.action, cand.ts_ms) == ("open", T0 + 30_000)


def test_historical_readings_never_raise_but_historical_alarms_do() -> None:
    """A stale threshold pages nobody; an alarm replayed after an outage is still an alarm, with both times."""
    smoke = EventRule.model_validate(
        {"id": "smoke", "event_types": ["smoke"], "category": "fire_safety", "severity": "critical"}
    )
    engine = RuleEngine([threshold(for_s=0), smoke])
    for i in range(10):
        assert engine.on_reading(DEV, T0 + i * 1000, {"temp_c": 90.0}, T0 + 99_000, hist=True) == []
    assert engine.tick(T0 + 200_000) == []
    [opened] = engine.on_event(DEV, T0, "smoke", True, T0 + 300_000, hist=True)
    assert (opened.action, opened.ts_ms, opened.hist) == ("open", T0, True)
    assert opened.detail["received_ms"] == T0 + 300_000
    # a replayed clear ends it at once, at the device's time, even for a rule that verifies live clears
    [cleared] = engine.on_event(DEV, T0 + 60_000, "smoke", False, T0 + 300_001, hist=True)
    assert (cleared.action, cleared.ts_ms, cleared.hist) == ("clear", T0 + 60_000, True)
    assert engine.on_event(DEV, T0 + 400_000, "smoke", True, T0 + 400_000)[0].action == "open"


def test_a_live_clear_of_an_alarm_still_waits_for_its_hold() -> None:
    rule = EventRule.model_validate(
        {
            "id": "smoke",
            "event_types": ["smoke"],
            "category": "fire_safety",
            "severity": "critical",
            "clear_mode": "verify",
            "verify_s": 30,
        }
    )
    engine = RuleEngine([rule])
    engine.on_event(DEV, T0, "smoke", True, T0)
    assert engine.on_event(DEV, T0 + 1000, "smoke", False, T0 + 1000) == []
    [cleared] = engine.tick(T0 + 32_000)
    assert cleared.action == "clear" and not cleared.hist


def test_event_repeats_and_verified_clear() -> None:
    rule = EventRule.model_validate(
        {
            "id": "smoke",
            "event_types": ["smoke"],
            "category": "fire_safety",
            "severity": "critical",
            "clear_mode": "verify",
            "verify_s": 10,
        }
    )
    engine = RuleEngine([rule])
    acts = [c.action for c in engine.on_event(DEV, T0, "smoke", True, T0)]
    acts += [c.action for c in engine.on_event(DEV, T0 + 1000, "smoke", True, T0 + 1000)]
    assert acts == ["open", "update"]
    assert engine.on_event(DEV, T0 + 2000, "smoke", False, T0 + 2000) == []
    assert engine.tick(T0 + 5000) == []
    [clear] = engine.tick(T0 + 12_000)
    assert clear.action == "clear"


def test_offline_after_delay_and_scope() -> None:
    rule = OfflineRule.model_validate(
        {"id": "off", "category": "device_fault", "severity": "major", "after_s": 60, "scope": {"kinds": ["camera"]}}
    )
    engine = RuleEngine([rule])
    cam = DeviceRef("c1", "site-a", DeviceKind.CAMERA, None)
    assert engine.on_health(DEV, "offline", T0) == []  # a sensor is out of scope
    assert engine.on_health(cam, "offline", T0) == []
    assert engine.tick(T0 + 59_000) == []
    assert [c.action for c in engine.tick(T0 + 60_000)] == ["open"]
    assert [c.action for c in engine.on_health(cam, "online", T0 + 70_000)] == ["clear"]


def test_composite_n_of_m_in_one_grid() -> None:
    rule = CompositeRule.model_validate(
        {
            "id": "cluster",
            "event_types": ["smoke"],
            "min_devices": 3,
            "within_s": 60,
            "category": "fire_safety",
            "severity": "critical",
        }
    )
    engine = RuleEngine([rule])
    grid = "110101001001001"
    devs = [DeviceRef(f"s{i}", "site-a", DeviceKind.SENSOR, grid) for i in range(4)]
    other = DeviceRef("x", "site-a", DeviceKind.SENSOR, "110101001001002")
    assert engine.on_event(devs[0], T0, "smoke", True, T0) == []
    assert engine.on_event(other, T0, "smoke", True, T0) == []
    assert engine.on_event(devs[1], T0, "smoke", True, T0 + 1000) == []
    [opened] = engine.on_event(devs[2], T0, "smoke", True, T0 + 2000)
    assert (opened.action, opened.subject, opened.value) == ("open", f"grid:{grid}", 3.0)
    assert engine.on_event(devs[3], T0, "smoke", True, T0 + 3000) == []
    # agreement expires after within_s
    [cleared] = engine.tick(T0 + 62_000)
    assert cleared.action == "clear"


def test_rate_of_change_over_window() -> None:
    rule = RateRule.model_validate(
        {
            "id": "drop",
            "metric": "pressure_kpa",
            "change": 100,
            "window_s": 60,
            "direction": "fall",
            "category": "fire_safety",
            "severity": "major",
        }
    )
    engine = RuleEngine([rule])
    acts = []
    # a slow fall of 150 kPa over 5 minutes never drops 100 within 60 s ...
    for i in range(11):
        ts = T0 + i * 30_000
        acts += [c.action for c in engine.on_reading(DEV, ts, {"pressure_kpa": 400.0 - i * 15}, ts)]
    assert acts == []
    # ... a burst does, and a steady reading after the window clears it
    t1 = T0 + 330_000  # 30 s after the last reading (250 kPa)
    acts += [c.action for c in engine.on_reading(DEV, t1, {"pressure_kpa": 130.0}, t1)]
    acts += [c.action for c in engine.on_reading(DEV, t1 + 61_000, {"pressure_kpa": 131.0}, t1 + 61_000)]
    assert acts == ["open", "clear"]


def test_absence_fires_after_silence_and_clears_on_data() -> None:
    rule = AbsenceRule.model_validate(
        {
            "id": "silent",
            "after_s": 600,
            "category": "device_fault",
            "severity": "minor",
            "scope": {"kinds": ["sensor"]},
        }
    )
    engine = RuleEngine([rule])
    cam = DeviceRef("c1", "site-a", DeviceKind.CAMERA, None)
    engine.on_reading(DEV, T0, {"temp_c": 20.0}, T0)
    engine.on_reading(cam, T0, {"fps": 10.0}, T0)
    assert engine.tick(T0 + 599_000) == []
    [opened] = engine.tick(T0 + 600_000)
    assert (opened.action, opened.device_id) == ("open", "s1")  # the camera is out of scope
    assert engine.tick(T0 + 700_000) == []
    [cleared] = engine.on_reading(DEV, T0 + 710_000, {"temp_c": 20.0}, T0 + 710_000)
    assert cleared.action == "clear"


def test_scope_by_site_grid_prefix_and_labels() -> None:
    rule = threshold(for_s=0, scope={"sites": ["site-a"], "grids": ["110101001"], "labels": {"zone": "north"}})
    engine = RuleEngine([rule])
    north = DeviceRef("n1", "site-a", DeviceKind.SENSOR, "110101001001009", {"zone": "north"})
    south = DeviceRef("s2", "site-a", DeviceKind.SENSOR, "110101001001009", {"zone": "south"})
    elsewhere = DeviceRef("e1", "site-a", DeviceKind.SENSOR, "110102001001001", {"zone": "north"})
    other_site = DeviceRef("o1", "site-b", DeviceKind.SENSOR, "110101001001009", {"zone": "north"})
    fired = [
        c.device_id
        for d in (north, south, elsewhere, other_site)
        for c in engine.on_reading(d, T0, {"temp_c": 99.0}, T0)
    ]
    assert fired == ["n1"]


def test_composite_on_metric_and_restart() -> None:
    rule = CompositeRule.model_validate(
        {
            "id": "heat_cluster",
            "metric": "temp_c",
            "op": ">",
            "value": 50,
            "min_devices": 2,
            "within_s": 60,
            "category": "fire_safety",
            "severity": "critical",
        }
    )
    engine = RuleEngine([rule])
    a, b = (DeviceRef(f"x{i}", "site-a", DeviceKind.SENSOR, "110101001001001") for i in range(2))
    assert engine.on_reading(a, T0, {"temp_c": 55.0}, T0) == []
    restarted = RuleEngine([rule])
    restarted.load_state(json.loads(json.dumps(engine.dump_state())))
    [opened] = restarted.on_reading(b, T0 + 1000, {"temp_c": 56.0}, T0 + 1000)
    assert opened.action == "open" and opened.detail["agreeing"] == ["x0", "x1"]


def test_absence_is_not_raised_for_a_device_known_offline() -> None:
    rules: list[Rule] = [
        AbsenceRule.model_validate({"id": "silent", "after_s": 60, "category": "device_fault", "severity": "minor"}),
        OfflineRule.model_validate({"id": "off", "category": "device_fault", "severity": "major"}),
    ]
    engine = RuleEngine(rules)
    engine.on_reading(DEV, T0, {"temp_c": 20.0}, T0)
    assert [c.rule_id for c in engine.on_health(DEV, "offline", T0 + 1000)] == ["off"]
    assert engine.tick(T0 + 120_000) == []  # one incident for one cause
    engine.on_health(DEV, "online", T0 + 130_000)
    assert [c.rule_id for c in engine.tick(T0 + 140_000)] == ["silent"]  # online but still sending nothing


def test_ignores_readings_only_when_on_points_would_do_nothing() -> None:
    camera = DeviceRef("cam-1", "site-a", DeviceKind.CAMERA, "110101001001001")
    engine = RuleEngine([threshold(scope={"kinds": ["sensor"]})])
    hot = (Point(T0, {"temp_c": 90.0}),)
    assert not engine.ignores_readings(camera)  # never seen: the locked path records it first
    assert engine.on_points(camera, hot, T0) == []
    assert engine.ignores_readings(camera)  # out of every rule's scope, plan cached
    assert not engine.ignores_readings(DeviceRef("cam-1", "site-a", DeviceKind.CAMERA, "110101001001001"))  # new ref
    engine.on_points(DEV, hot, T0)
    assert not engine.ignores_readings(DEV)  # the sensor is watched
    engine.set_rules([threshold(id="any-hot")])  # a rule for every kind: the camera's plan goes
    assert not engine.ignores_readings(camera)
    engine.on_points(camera, hot, T0)
    assert not engine.ignores_readings(camera)
