"""Pure, seeded signal models for simulated sensors: diurnal cycles, noise, drift, stuck-at, spikes, drain.

Every model is a frozen dataclass with ``at(t_s) -> float``: the value at Unix time
``t_s`` (seconds). Randomness is a pure function of ``(seed, keys, time tick)`` via
SplitMix64, so sampling the same model at the same instant always gives the same
value -- in any order, in any process, on any machine -- and nothing holds state.
Models compose: :class:`Sum` adds parts, :class:`Clamp` bounds, :class:`StuckAt`
freezes, :class:`Quantize` rounds. Local time of day uses a fixed UTC offset
(default +8 h) so a diurnal peak lands at the same wall-clock hour everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Protocol

_MASK64: Final = (1 << 64) - 1
DAY_S: Final = 86_400.0
DEFAULT_TZ_OFFSET_H: Final = 8.0


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def mix(*keys: int) -> int:
    """A 64-bit hash of integer ``keys`` that is stable across processes and Python versions."""
    h = 0x2545F4914F6CDD1D
    for key in keys:
        h = _splitmix(h ^ (key & _MASK64))
    return h


def uniform(*keys: int) -> float:
    """A uniform number in [0, 1) determined by ``keys``."""
    return (mix(*keys) >> 11) / float(1 << 53)


def gaussian(*keys: int) -> float:
    """A standard normal number determined by ``keys`` (Box-Muller on two hashed uniforms)."""
    u1 = 1.0 - uniform(*keys, 1)  # (0, 1]: log never sees zero
    u2 = uniform(*keys, 2)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def local_hour(t_s: float, tz_offset_h: float = DEFAULT_TZ_OFFSET_H) -> float:
    """Hour of day in [0, 24) at Unix time ``t_s`` in a zone ``tz_offset_h`` hours from UTC."""
    return ((t_s / 3600.0) + tz_offset_h) % 24.0


class Signal(Protocol):
    """A deterministic function of time."""

    def at(self, t_s: float) -> float:
        """The value at Unix time ``t_s`` seconds."""
        ...


@dataclass(frozen=True, slots=True)
class Constant:
    """A fixed value."""

    value: float

    def at(self, t_s: float) -> float:
        """Always ``value``."""
        return self.value


@dataclass(frozen=True, slots=True)
class Diurnal:
    """A daily cosine around ``mean`` peaking at ``peak_hour`` local time."""

    mean: float
    amplitude: float
    peak_hour: float = 14.0
    tz_offset_h: float = DEFAULT_TZ_OFFSET_H

    def at(self, t_s: float) -> float:
        """``mean + amplitude * cos(2π (hour - peak) / 24)``."""
        hour = local_hour(t_s, self.tz_offset_h)
        return self.mean + self.amplitude * math.cos(2.0 * math.pi * (hour - self.peak_hour) / 24.0)


@dataclass(frozen=True, slots=True)
class Noise:
    """Gaussian noise with ``sigma``, one draw per ``step_s`` tick, fixed by ``seed``."""

    sigma: float
    seed: int
    step_s: float = 1.0

    def at(self, t_s: float) -> float:
        """The noise value of the tick containing ``t_s``."""
        if self.sigma == 0.0:
            return 0.0
        return self.sigma * gaussian(self.seed, math.floor(t_s / self.step_s))


@dataclass(frozen=True, slots=True)
class Drift:
    """A linear drift of ``rate_per_h`` per hour starting at ``start_s`` (zero before)."""

    rate_per_h: float
    start_s: float = 0.0

    def at(self, t_s: float) -> float:
        """Accumulated drift at ``t_s``."""
        return self.rate_per_h * max(0.0, t_s - self.start_s) / 3600.0


@dataclass(frozen=True, slots=True)
class Spikes:
    """Rare rectangular spikes of ``magnitude`` lasting ``width_s``, on average ``rate_per_h`` per hour."""

    rate_per_h: float
    magnitude: float
    seed: int
    width_s: float = 10.0

    def at(self, t_s: float) -> float:
        """``magnitude`` inside a spike window, else 0."""
        probability = min(1.0, self.rate_per_h * self.width_s / 3600.0)
        window = math.floor(t_s / self.width_s)
        return self.magnitude if uniform(self.seed, window, 7) < probability else 0.0


@dataclass(frozen=True, slots=True)
class Pulse:
    """``magnitude`` during ``[start_s, end_s)``, zero outside: a one-off spike injected by a scenario."""

    magnitude: float
    start_s: float
    end_s: float

    def at(self, t_s: float) -> float:
        """``magnitude`` inside the window."""
        return self.magnitude if self.start_s <= t_s < self.end_s else 0.0


@dataclass(frozen=True, slots=True)
class Sawtooth:
    """Rises linearly from ``low`` to ``high`` over ``period_s``, reset at ``reset_hour`` local time."""

    low: float
    high: float
    period_s: float = DAY_S
    reset_hour: float = 6.0
    tz_offset_h: float = DEFAULT_TZ_OFFSET_H

    def at(self, t_s: float) -> float:
        """Position in the current rise."""
        phase_s = (t_s + (self.tz_offset_h - self.reset_hour) * 3600.0) % self.period_s
        return self.low + (self.high - self.low) * phase_s / self.period_s


@dataclass(frozen=True, slots=True)
class BatteryDrain:
    """A battery at ``start_pct`` at ``start_s`` losing ``per_day`` percent a day, never below 0."""

    start_pct: float
    per_day: float
    start_s: float = 0.0

    def at(self, t_s: float) -> float:
        """Charge left at ``t_s``, in percent."""
        used = self.per_day * max(0.0, t_s - self.start_s) / DAY_S
        return max(0.0, min(100.0, self.start_pct - used))


@dataclass(frozen=True, slots=True)
class Sum:
    """The sum of several signals."""

    parts: tuple[Signal, ...]

    def at(self, t_s: float) -> float:
        """Sum of every part at ``t_s``."""
        return math.fsum(part.at(t_s) for part in self.parts)


@dataclass(frozen=True, slots=True)
class Scaled:
    """A signal times ``factor`` (e.g. -1 for a humidity that falls as temperature rises)."""

    signal: Signal
    factor: float

    def at(self, t_s: float) -> float:
        """``factor * signal``."""
        return self.factor * self.signal.at(t_s)


@dataclass(frozen=True, slots=True)
class Clamp:
    """A signal bounded to ``[low, high]``."""

    signal: Signal
    low: float
    high: float

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"clamp low {self.low} is above high {self.high}")

    def at(self, t_s: float) -> float:
        """The inner value, bounded."""
        return max(self.low, min(self.high, self.signal.at(t_s)))


@dataclass(frozen=True, slots=True)
class StuckAt:
    """A sensor that froze at ``since_s``: afterwards it repeats the value it had then."""

    signal: Signal
    since_s: float

    def at(self, t_s: float) -> float:
        """The inner value before ``since_s``, the frozen value from then on."""
        return self.signal.at(min(t_s, self.since_s))


@dataclass(frozen=True, slots=True)
class Quantize:
    """A signal rounded to ``digits`` decimals (what a real sensor's resolution gives)."""

    signal: Signal
    digits: int = 2

    def at(self, t_s: float) -> float:
        """The inner value rounded."""
        return round(self.signal.at(t_s), self.digits)


def seasonal_noisy(mean: float, amplitude: float, sigma: float, seed: int, peak_hour: float = 14.0) -> Sum:
    """A diurnal cycle plus noise: the usual shape of an environmental reading."""
    return Sum((Diurnal(mean, amplitude, peak_hour), Noise(sigma, seed)))
