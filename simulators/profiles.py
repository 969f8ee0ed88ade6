"""Sensor profiles for ``sim_sensor``: which metrics a simulated sensor reports and which alarms it raises.

A profile is a tuple of :class:`MetricModel` (how to build each metric's seeded
signal, its physical bounds and resolution) and :class:`AlarmModel` (threshold,
clearing level, severity, and the value the metric is forced to when a scenario
calls ``trigger``). Adding a profile is adding an entry to :data:`PROFILES`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from edge.vocabulary import EventType
from edge.wire import Severity
from simulators.signals import (
    BatteryDrain,
    Constant,
    Diurnal,
    Noise,
    Sawtooth,
    Signal,
    Spikes,
    Sum,
    mix,
    uniform,
)


def metric_seed(seed: int, metric: str) -> int:
    """A per-metric seed derived stably from the device seed and the metric name."""
    return mix(seed, zlib.crc32(metric.encode()))


@dataclass(frozen=True, slots=True)
class MetricModel:
    """One simulated metric: ``build(seed, start_s)`` gives its signal before bounds and rounding."""

    name: str
    build: Callable[[int, float], Signal]
    low: float
    high: float
    digits: int = 1


@dataclass(frozen=True, slots=True)
class AlarmModel:
    """A local alarm on one metric: raised at ``above`` (or ``below``), cleared past ``clear``."""

    type: EventType
    metric: str
    severity: Severity
    forced: float
    clear: float
    above: float | None = None
    below: float | None = None

    @property
    def resolved(self) -> float:
        """A reading past the clearing level by the hysteresis band: what the metric reads once the
        cause was dealt with (the bin emptied, the leak shut off), until its own signal agrees."""
        if self.above is not None:
            return self.clear - (self.above - self.clear)
        assert self.below is not None
        return self.clear + (self.clear - self.below)

    def holds(self, value: float, active: bool) -> bool:
        """Whether the alarm condition holds for ``value``, with hysteresis while ``active``."""
        if self.above is not None:
            return value >= self.above or (active and value > self.clear)
        assert self.below is not None
        return value <= self.below or (active and value < self.clear)


@dataclass(frozen=True, slots=True)
class Profile:
    """What one kind of simulated sensor reports."""

    name: str
    description: str
    metrics: tuple[MetricModel, ...]
    alarms: tuple[AlarmModel, ...]


def _battery(start_low: float, per_day: float) -> Callable[[int, float], Signal]:
    def build(seed: int, start_s: float) -> Signal:
        return BatteryDrain(start_low + (100.0 - start_low) * uniform(seed, 5), per_day, start_s)

    return build


def _rssi(seed: int, _start_s: float) -> Signal:
    return Sum((Constant(-95.0 + 35.0 * uniform(seed, 3)), Noise(2.5, seed, 5.0)))


def _env(mean: float, amplitude: float, peak_hour: float, sigma: float) -> Callable[[int, float], Signal]:
    def build(seed: int, _start_s: float) -> Signal:
        return Sum((Diurnal(mean, amplitude, peak_hour), Noise(sigma, seed)))

    return build


def _spiky(
    mean: float, amplitude: float, peak_hour: float, sigma: float, *, rate_per_h: float, magnitude: float
) -> Callable[[int, float], Signal]:
    def build(seed: int, _start_s: float) -> Signal:
        return Sum(
            (Diurnal(mean, amplitude, peak_hour), Noise(sigma, seed), Spikes(rate_per_h, magnitude, mix(seed, 11)))
        )

    return build


def _steady(level: float, sigma: float) -> Callable[[int, float], Signal]:
    def build(seed: int, _start_s: float) -> Signal:
        return Sum((Constant(level), Noise(sigma, seed)))

    return build


def _fill(seed: int, _start_s: float) -> Signal:
    return Sum((Sawtooth(5.0, 80.0), Noise(1.5, seed, 30.0)))


RSSI: Final = MetricModel("rssi_dbm", _rssi, -120.0, -30.0, 0)

PROFILES: Final[dict[str, Profile]] = {
    "env": Profile(
        "env",
        "environment station: temperature, humidity, PM2.5, CO2, noise",
        (
            MetricModel("temp_c", _env(24.0, 5.0, 15.0, 0.3), -30.0, 60.0),
            MetricModel("humidity_pct", _env(60.0, 15.0, 4.0, 1.5), 0.0, 100.0),
            MetricModel("pm25", _spiky(35.0, 12.0, 8.0, 4.0, rate_per_h=0.5, magnitude=60.0), 0.0, 999.0),
            MetricModel("co2_ppm", _env(520.0, 80.0, 19.0, 15.0), 380.0, 5000.0, 0),
            MetricModel("noise_db", _spiky(50.0, 12.0, 18.0, 2.0, rate_per_h=1.0, magnitude=18.0), 20.0, 130.0),
            RSSI,
        ),
        (
            AlarmModel(EventType.AIR_QUALITY, "pm25", Severity.MAJOR, forced=220.0, clear=100.0, above=150.0),
            AlarmModel(EventType.CO2_HIGH, "co2_ppm", Severity.MINOR, forced=2600.0, clear=1500.0, above=2000.0),
            AlarmModel(EventType.NOISE, "noise_db", Severity.MINOR, forced=92.0, clear=75.0, above=85.0),
        ),
    ),
    "smoke": Profile(
        "smoke",
        "smoke detector: obscuration and heat",
        (
            MetricModel("smoke_obscuration", _steady(0.2, 0.05), 0.0, 100.0, 2),
            MetricModel("temp_c", _env(22.0, 3.0, 15.0, 0.2), -20.0, 120.0),
            MetricModel("battery_pct", _battery(70.0, 0.05), 0.0, 100.0),
            RSSI,
        ),
        (
            AlarmModel(EventType.SMOKE, "smoke_obscuration", Severity.CRITICAL, forced=8.0, clear=1.0, above=3.0),
            AlarmModel(EventType.HEAT, "temp_c", Severity.CRITICAL, forced=68.0, clear=50.0, above=57.0),
            AlarmModel(EventType.BATTERY_LOW, "battery_pct", Severity.MINOR, forced=9.0, clear=20.0, below=15.0),
        ),
    ),
    "water": Profile(
        "water",
        "water leak detector (leak 0/1) on battery",
        (
            MetricModel("leak", lambda _seed, _start: Constant(0.0), 0.0, 1.0, 0),
            MetricModel("battery_pct", _battery(60.0, 0.1), 0.0, 100.0),
            RSSI,
        ),
        (
            AlarmModel(EventType.WATER_LEAK, "leak", Severity.MAJOR, forced=1.0, clear=0.5, above=1.0),
            AlarmModel(EventType.BATTERY_LOW, "battery_pct", Severity.MINOR, forced=9.0, clear=20.0, below=15.0),
        ),
    ),
    "manhole": Profile(
        "manhole",
        "manhole cover tilt sensor",
        (
            MetricModel("tilt_deg", _steady(0.8, 0.2), 0.0, 90.0),
            MetricModel("battery_pct", _battery(60.0, 0.08), 0.0, 100.0),
            RSSI,
        ),
        (
            AlarmModel(EventType.MANHOLE_TILT, "tilt_deg", Severity.MAJOR, forced=32.0, clear=8.0, above=15.0),
            AlarmModel(EventType.BATTERY_LOW, "battery_pct", Severity.MINOR, forced=9.0, clear=20.0, below=15.0),
        ),
    ),
    "charger": Profile(
        "charger",
        "e-bike charging point: current and temperature",
        (
            MetricModel("current_a", _env(4.0, 4.0, 21.0, 0.4), 0.0, 40.0, 2),
            MetricModel("temp_c", _env(30.0, 8.0, 22.0, 0.5), -20.0, 150.0),
            RSSI,
        ),
        (
            AlarmModel(EventType.OVERCURRENT, "current_a", Severity.MAJOR, forced=22.0, clear=12.0, above=16.0),
            AlarmModel(EventType.CHARGER_OVERHEAT, "temp_c", Severity.CRITICAL, forced=85.0, clear=60.0, above=70.0),
        ),
    ),
    "hydrant": Profile(
        "hydrant",
        "fire hydrant pressure",
        (
            MetricModel("pressure_kpa", _env(350.0, -20.0, 8.0, 5.0), 0.0, 1600.0, 0),
            MetricModel("battery_pct", _battery(60.0, 0.05), 0.0, 100.0),
            RSSI,
        ),
        (
            AlarmModel(EventType.LOW_PRESSURE, "pressure_kpa", Severity.MAJOR, forced=60.0, clear=200.0, below=150.0),
            AlarmModel(EventType.BATTERY_LOW, "battery_pct", Severity.MINOR, forced=9.0, clear=20.0, below=15.0),
        ),
    ),
    "bin": Profile(
        "bin",
        "waste bin fill level (emptied every morning)",
        (MetricModel("fill_pct", _fill, 0.0, 100.0, 0), RSSI),
        (AlarmModel(EventType.BIN_FULL, "fill_pct", Severity.MINOR, forced=97.0, clear=70.0, above=90.0),),
    ),
    "gas": Profile(
        "gas",
        "combustible gas detector (% of lower explosive limit)",
        (MetricModel("gas_lel_pct", _steady(0.5, 0.2), 0.0, 100.0), RSSI),
        (AlarmModel(EventType.GAS_LEAK, "gas_lel_pct", Severity.CRITICAL, forced=25.0, clear=5.0, above=10.0),),
    ),
}
