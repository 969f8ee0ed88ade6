"""Simulated drivers: deterministic for a seed, triggers raise events, faults apply, kiosk paper runs out."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edge.drivers import Sample, get_driver_spec
from edge.wire import EventState
from simulators.drivers import SimSensorConfig, SimSensorDriver, UnknownTriggerError, find_sim
from simulators.profiles import PROFILES
from simulators.sim_kiosk import SimKioskConfig, SimKioskDriver

T0 = 1_700_006_400_000 + 2 * 3_600_000  # 10:00 local (UTC+8)
MIN = 60_000


def sensor(profile: str, seed: int = 1, **over: Any) -> SimSensorDriver:
    return SimSensorDriver(
        SimSensorConfig.model_validate({"type": "sim_sensor", "profile": profile, "seed": seed, **over})
    )


def kiosk(**over: Any) -> SimKioskDriver:
    return SimKioskDriver(SimKioskConfig.model_validate({"type": "sim_kiosk", **over}))


def run(driver: Any, n: int, step_ms: int = MIN, start: int = T0) -> list[Sample]:
    return [driver.poll(start + i * step_ms) for i in range(n)]


def kinds(samples: list[Sample]) -> list[tuple[str, EventState]]:
    return [(e.type, e.state) for s in samples for e in s.events]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_sensor_deterministic_bounded_and_seed_sensitive(profile: str) -> None:
    a, b = run(sensor(profile, 5), 30), run(sensor(profile, 5), 30)
    assert [s.metrics for s in a] == [s.metrics for s in b]
    assert [s.metrics for s in a] != [s.metrics for s in run(sensor(profile, 6), 30)]
    models = {m.name: m for m in PROFILES[profile].metrics}
    for sample in a:
        assert set(sample.metrics) == set(models)
        for name, value in sample.metrics.items():
            assert models[name].low <= value <= models[name].high, (name, value)
    assert kinds(a) == []  # quiet without faults or spontaneous alarms


@pytest.mark.parametrize("hour", range(0, 24, 3))
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_alarm_can_be_triggered_and_released_at_any_hour(profile: str, hour: int) -> None:
    """Released means cleared at the next poll, whatever the hour: a bin released in the evening (its
    natural fill above the clearing level) once stayed full until morning, and the alarm matrix, run
    in the evening, saw its incident still open."""
    start = T0 + hour * 60 * MIN
    for spec in PROFILES[profile].alarms:
        driver = sensor(profile, 2)
        driver.poll(start)
        driver.trigger(spec.type)
        raised = driver.poll(start + MIN)
        assert [(e.type, e.state) for e in raised.events] == [(spec.type, EventState.ACTIVE)]
        assert raised.metrics[spec.metric] == spec.forced
        assert driver.poll(start + 2 * MIN).events == ()  # still active: no repeat
        driver.release(spec.type)
        cleared = driver.poll(start + 3 * MIN)
        assert kinds([cleared]) == [(spec.type, EventState.CLEARED)]
        assert not spec.holds(float(cleared.metrics[spec.metric]), active=True)
        assert kinds(run(driver, 30, start=start + 4 * MIN)) == []  # and it stays cleared


def test_trigger_by_handle_with_duration() -> None:
    driver = sensor("smoke", handle="smoke-test-1")
    driver.poll(T0)
    find_sim("smoke-test-1").trigger("smoke", duration_s=120)
    events = kinds(run(driver, 6, start=T0 + MIN))
    assert events == [("smoke", EventState.ACTIVE), ("smoke", EventState.CLEARED)]
    with pytest.raises(UnknownTriggerError, match="no alarm 'fire'"):
        driver.trigger("fire")
    with pytest.raises(KeyError):
        find_sim("nobody")


def test_runtime_faults() -> None:
    driver = sensor("env", 3)
    before = run(driver, 3)
    driver.stuck("temp_c")
    stuck = run(driver, 10, start=T0 + 3 * MIN)
    assert {s.metrics["temp_c"] for s in stuck} == {before[-1].metrics["temp_c"]}
    assert len({s.metrics["humidity_pct"] for s in stuck}) > 1
    driver.clear_faults()
    driver.drift("co2_ppm", rate_per_h=600.0, now_s=T0 / 1000)
    drifted = driver.poll(T0 + 60 * MIN).metrics["co2_ppm"]
    assert drifted - sensor("env", 3).poll(T0 + 60 * MIN).metrics["co2_ppm"] == pytest.approx(600, abs=1)
    driver.spike("noise_db", 60.0, duration_s=60, now_s=(T0 + 61 * MIN) / 1000)
    assert kinds([driver.poll(T0 + 61 * MIN)]) == [("noise", EventState.ACTIVE)]


def test_scheduled_fault_from_config() -> None:
    driver = sensor("manhole", 4, faults=[{"kind": "spike", "metric": "tilt_deg", "after_s": 120, "magnitude": 40}])
    assert kinds(run(driver, 5)) == [("manhole_tilt", EventState.ACTIVE), ("manhole_tilt", EventState.CLEARED)]


def test_clear_faults_restores_healthy_readings() -> None:
    faulty = sensor("water", 6, faults=[{"kind": "stuck", "metric": "battery_pct", "after_s": 0}])
    healthy = sensor("water", 6)
    run(faulty, 3)
    run(healthy, 3)
    faulty.clear_faults()
    later = T0 + 3 * 86_400_000  # battery drained for three days since the first poll
    assert faulty.poll(later).metrics == healthy.poll(later).metrics


def test_spontaneous_alarms_are_deterministic() -> None:
    def events(seed: int) -> list[tuple[str, EventState]]:
        return kinds(run(sensor("gas", seed, alarm_rate_per_day=200, alarm_duration_s=60), 300))

    assert events(9) == events(9)
    assert ("gas_leak", EventState.ACTIVE) in events(9)


def test_sensor_config_errors() -> None:
    with pytest.raises(ValidationError) as info:
        SimSensorConfig.model_validate({"type": "sim_sensor", "profile": "lava"})
    assert info.value.errors()[0]["loc"] == ("profile",)
    with pytest.raises(ValidationError) as info:
        SimSensorConfig.model_validate({"type": "sim_sensor", "profile": "env", "sed": 1})
    assert info.value.errors()[0]["loc"] == ("sed",)
    with pytest.raises(UnknownTriggerError, match="no metric 'pressure'"):
        sensor("env", faults=[{"kind": "stuck", "metric": "pressure"}])
    assert get_driver_spec("sim_sensor").config_model is SimSensorConfig


def test_kiosk_deterministic_and_quiet_at_night() -> None:
    a = [s.metrics for s in run(kiosk(seed=4), 120)]
    assert a == [s.metrics for s in run(kiosk(seed=4), 120)]
    assert sum(int(m["transactions"]) for m in a) > 20  # 2 busy hours at ~40/h
    night = run(kiosk(seed=4), 60, start=T0 + 13 * 3_600_000)  # 23:00 local
    assert sum(int(s.metrics["transactions"]) for s in night) == 0


def test_kiosk_paper_runs_out_and_refills() -> None:
    driver = kiosk(seed=1, paper_sheets=60, txn_peak_per_h=600, jam_per_1000_prints=0, refill_after_s=1800)
    samples = run(driver, 60)
    events = kinds(samples)
    low = events.index(("paper_low", EventState.ACTIVE))
    out = events.index(("paper_out", EventState.ACTIVE))
    assert low < out
    assert ("paper_out", EventState.CLEARED) in events[out:]  # refilled after 30 min
    papers = [float(s.metrics["paper_pct"]) for s in samples]
    assert 100.0 in papers[papers.index(0.0) :]
    assert int(samples[-1].metrics["errors_total"]) > 0  # transactions failed without paper


@pytest.mark.parametrize("name", ["printer_jam", "reader_fault", "door_open", "disk_full", "app_crash"])
def test_kiosk_triggers(name: str) -> None:
    driver = kiosk(seed=2, app_crashes_per_day=0, reader_faults_per_day=0, jam_per_1000_prints=0)
    driver.poll(T0)
    driver.trigger(name, duration_s=120)
    events = kinds(run(driver, 5, start=T0 + MIN))
    assert events == [(name, EventState.ACTIVE), (name, EventState.CLEARED)]


def test_kiosk_app_crash_resets_uptime_and_blocks_transactions() -> None:
    driver = kiosk(seed=3, txn_peak_per_h=600)
    run(driver, 5)
    driver.trigger("app_crash")
    crashed = run(driver, 5, start=T0 + 5 * MIN)
    assert all(s.metrics["uptime_s"] == 0 and s.metrics["transactions"] == 0 for s in crashed)
    driver.release("app_crash")
    back = run(driver, 3, start=T0 + 10 * MIN)
    assert back[-1].metrics["app_up"] is True and 0 < int(back[-1].metrics["uptime_s"]) <= 2 * 60


def test_kiosk_paper_trigger_and_unknown() -> None:
    driver = kiosk(seed=5, txn_peak_per_h=0)
    driver.poll(T0)
    driver.trigger("paper_out")
    assert sorted(kinds([driver.poll(T0 + MIN)])) == [
        ("paper_low", EventState.ACTIVE),
        ("paper_out", EventState.ACTIVE),
    ]
    driver.release("paper_out")
    assert sorted(kinds([driver.poll(T0 + 2 * MIN)])) == [
        ("paper_low", EventState.CLEARED),
        ("paper_out", EventState.CLEARED),
    ]
    with pytest.raises(UnknownTriggerError, match="no trigger 'smoke'"):
        driver.trigger("smoke")
