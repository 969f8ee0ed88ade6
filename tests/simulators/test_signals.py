"""Signal models: deterministic for a seed, bounded, stuck-at sticks, drift and drain behave."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.signals import (
    BatteryDrain,
    Clamp,
    Constant,
    Diurnal,
    Drift,
    Noise,
    Pulse,
    Sawtooth,
    Spikes,
    StuckAt,
    Sum,
    gaussian,
    local_hour,
    mix,
    uniform,
)

seeds = st.integers(min_value=0, max_value=2**63)
times = st.floats(min_value=946_684_800.0, max_value=4_102_444_800.0, allow_nan=False)
FAST = settings(max_examples=60, deadline=None)


def model(seed: int) -> Sum:
    return Sum((Diurnal(20.0, 5.0), Noise(1.0, seed), Spikes(3.0, 40.0, seed + 1), Drift(0.1, 1.7e9)))


@FAST
@given(seeds, st.lists(times, min_size=1, max_size=20))
def test_same_seed_same_values_in_any_order(seed: int, ts: list[float]) -> None:
    a, b = model(seed), model(seed)
    forward = [a.at(t) for t in ts]
    backward = [b.at(t) for t in reversed(ts)][::-1]
    assert forward == backward


def test_different_seeds_differ() -> None:
    t = [1.7e9 + i for i in range(50)]
    assert [Noise(1.0, 1).at(x) for x in t] != [Noise(1.0, 2).at(x) for x in t]


def test_hashed_randomness_is_well_distributed() -> None:
    assert len({mix(i) for i in range(1000)}) == 1000
    uniforms = [uniform(42, i) for i in range(4000)]
    assert all(0.0 <= u < 1.0 for u in uniforms)
    assert 0.45 < sum(uniforms) / len(uniforms) < 0.55
    values = [gaussian(5, i) for i in range(4000)]
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    assert abs(mean) < 0.1 and 0.85 < var < 1.15


@FAST
@given(seeds, times, st.floats(-100, 100), st.floats(0, 50))
def test_clamp_is_bounded(seed: int, t: float, low: float, width: float) -> None:
    value = Clamp(Sum((model(seed), Noise(500.0, seed))), low, low + width).at(t)
    assert low <= value <= low + width


@FAST
@given(seeds, times, st.lists(st.floats(0, 1e7), min_size=1, max_size=10))
def test_stuck_at_really_sticks(seed: int, since: float, later: list[float]) -> None:
    base = model(seed)
    stuck = StuckAt(base, since)
    frozen = base.at(since)
    assert all(stuck.at(since + dt) == frozen for dt in later)
    assert stuck.at(since - 10.0) == base.at(since - 10.0)


@FAST
@given(st.floats(0, 100), st.floats(0, 50), times, st.floats(0, 1e8))
def test_battery_drains_monotonically_within_0_100(start: float, per_day: float, t0: float, dt: float) -> None:
    battery = BatteryDrain(start, per_day, t0)
    a, b = battery.at(t0 + dt), battery.at(t0 + dt + 3600.0)
    assert 0.0 <= b <= a <= 100.0


@FAST
@given(st.floats(-5, 5), times, st.floats(0, 1e6))
def test_drift_is_linear_after_start(rate: float, start: float, dt: float) -> None:
    drift = Drift(rate, start)
    assert drift.at(start - 1.0) == 0.0
    assert math.isclose(drift.at(start + dt), rate * dt / 3600.0, rel_tol=1e-9, abs_tol=1e-9)


def test_diurnal_peaks_at_the_local_hour() -> None:
    day = Diurnal(20.0, 5.0, peak_hour=14.0, tz_offset_h=8.0)
    midnight_utc = 1_700_006_400.0  # 2023-11-15 00:00 UTC
    peak = midnight_utc + 6 * 3600.0  # 14:00 at UTC+8
    assert local_hour(peak) == 14.0
    assert day.at(peak) == 25.0
    assert math.isclose(day.at(peak + 12 * 3600.0), 15.0)


@settings(max_examples=25, deadline=None)
@given(seeds, st.floats(0.1, 20))
def test_spikes_are_rare_and_exact(seed: int, rate: float) -> None:
    spikes = Spikes(rate, 7.0, seed, width_s=10.0)
    values = [spikes.at(1.7e9 + 10.0 * i) for i in range(720)]  # two hours of windows
    assert set(values) <= {0.0, 7.0}
    hits = values.count(7.0)
    assert hits <= rate * 2 * 4 + 10


def test_pulse_and_sawtooth() -> None:
    pulse = Pulse(5.0, 100.0, 110.0)
    assert [pulse.at(t) for t in (99.9, 100.0, 109.9, 110.0)] == [0.0, 5.0, 5.0, 0.0]
    saw = Sawtooth(0.0, 100.0, reset_hour=6.0, tz_offset_h=0.0)
    assert saw.at(6 * 3600.0) == 0.0
    assert math.isclose(saw.at(18 * 3600.0), 50.0)
    assert Constant(3.0).at(0.0) == 3.0
