"""Per-device rate limits: a token bucket per device, pure (time is passed in), a few hundred ns per message.

Each device may send ``rate_per_s`` messages per second on average with bursts
up to ``burst``; a message costs one token plus one per ``bytes_per_token``
bytes of payload, so a device sending maximal payloads is held back sooner.
A message that finds too few tokens is refused (ingest dead-letters it with
reason ``rate_limited``). The first refusal of an episode says ``started`` (raise
an incident once, not per message); the first message admitted after the
bucket has refilled completely says ``ended`` (clear it). The limiter keeps at
most ``max_devices`` buckets, forgetting refilled (idle) ones first, so random
device ids cannot grow it without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_RATE_PER_S: Final = 50.0
DEFAULT_BURST: Final = 500.0
DEFAULT_BYTES_PER_TOKEN: Final = 16 * 1024
DEFAULT_MAX_DEVICES: Final = 100_000


@dataclass(frozen=True, slots=True)
class Admission:
    """The verdict on one message."""

    allowed: bool
    started: bool = False  # first refusal of an episode: raise one incident
    ended: bool = False  # first admission after the device calmed down: clear it


ADMIT: Final = Admission(True)
REFUSE: Final = Admission(False)
_STARTED: Final = Admission(False, started=True)
_ENDED: Final = Admission(True, ended=True)


class _Bucket:
    __slots__ = ("dropped", "last", "limited", "tokens")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.last = now
        self.limited = False
        self.dropped = 0


class DeviceRateLimiter:
    """Token buckets keyed by device id."""

    def __init__(
        self,
        rate_per_s: float = DEFAULT_RATE_PER_S,
        burst: float = DEFAULT_BURST,
        *,
        bytes_per_token: int = DEFAULT_BYTES_PER_TOKEN,
        max_devices: int = DEFAULT_MAX_DEVICES,
    ) -> None:
        if rate_per_s <= 0 or burst < 1 or bytes_per_token < 1 or max_devices < 1:
            raise ValueError("rate_per_s must be > 0, burst >= 1, bytes_per_token >= 1 and max_devices >= 1")
        self.rate = float(rate_per_s)
        self.burst = float(burst)
        self.bytes_per_token = bytes_per_token
        self.max_devices = max_devices
        self._buckets: dict[str, _Bucket] = {}
        self.refused = 0
        self.episodes = 0

    def cost(self, size: int) -> float:
        """Tokens a message of ``size`` payload bytes costs."""
        return 1.0 + size // self.bytes_per_token

    def admit(self, device_id: str, size: int, now_s: float) -> Admission:
        """Charge one message of ``size`` bytes from ``device_id`` at time ``now_s`` (seconds, monotonic)."""
        bucket = self._buckets.get(device_id)
        if bucket is None:
            if len(self._buckets) >= self.max_devices:
                self._evict(now_s)
            bucket = self._buckets[device_id] = _Bucket(self.burst, now_s)
        else:
            elapsed = now_s - bucket.last
            if elapsed > 0:
                tokens = bucket.tokens + elapsed * self.rate
                bucket.tokens = tokens if tokens < self.burst else self.burst
                bucket.last = now_s
        cost = 1.0 if size < self.bytes_per_token else 1.0 + size // self.bytes_per_token
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            if bucket.limited and bucket.tokens + cost >= self.burst:
                bucket.limited = False
                return _ENDED
            return ADMIT
        bucket.dropped += 1
        self.refused += 1
        if bucket.limited:
            return REFUSE
        bucket.limited = True
        self.episodes += 1
        return _STARTED

    def dropped(self, device_id: str) -> int:
        """Messages refused from ``device_id`` since it was first seen (or last forgotten)."""
        bucket = self._buckets.get(device_id)
        return 0 if bucket is None else bucket.dropped

    def limited(self) -> list[str]:
        """Devices in a limited episode right now."""
        return sorted(d for d, b in self._buckets.items() if b.limited)

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self, now_s: float) -> None:
        """Forget buckets that have refilled (idle devices); if none, the oldest-touched half."""
        full = [
            d
            for d, b in self._buckets.items()
            if not b.limited and b.tokens + (now_s - b.last) * self.rate >= self.burst
        ]
        if not full:
            by_age = sorted(self._buckets, key=lambda d: self._buckets[d].last)
            full = by_age[: max(1, len(by_age) // 2)]
        for device_id in full:
            del self._buckets[device_id]
