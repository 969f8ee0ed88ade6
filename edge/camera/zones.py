"""Polygon zones in normalised frame coordinates, and restricted-hour windows (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from zoneinfo import ZoneInfo

_HOURS_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class ZoneConfigError(ValueError):
    """A zone polygon or hour window that makes no sense."""


@dataclass(frozen=True, slots=True)
class HourWindow:
    """A daily window ``start-end`` in local time; ``end < start`` wraps past midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> HourWindow:
        """Parse ``"HH:MM-HH:MM"`` (``24:00`` allowed as an end)."""
        match = _HOURS_RE.fullmatch(text.strip())
        if match is None:
            raise ZoneConfigError(f"hour window {text!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        end = time(23, 59, 59, 999_999) if h2 == 24 else time(h2, m2)
        if h2 == 24 and m2 != 0:
            raise ZoneConfigError(f"hour window {text!r} ends after 24:00")
        return cls(time(h1, m1), end)

    def contains(self, moment: time) -> bool:
        """Whether the local time of day ``moment`` falls in the window."""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def local_time(ts_ms: int, tz: str) -> time:
    """The local time of day of ``ts_ms`` in the IANA zone ``tz`` ("UTC" by default)."""
    zone: tzinfo = UTC if tz in ("UTC", "utc", "") else ZoneInfo(tz)
    return datetime.fromtimestamp(ts_ms / 1000.0, tz=zone).time()


@dataclass(frozen=True, slots=True)
class Polygon:
    """A simple polygon with vertices as (x, y) fractions of frame width and height."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.points) < 3:
            raise ZoneConfigError("a polygon needs at least 3 points")
        for x, y in self.points:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ZoneConfigError(f"polygon point ({x}, {y}) is outside the 0..1 frame")

    def contains(self, x: float, y: float) -> bool:
        """Even-odd rule point-in-polygon test for a normalised point."""
        inside = False
        pts = self.points
        j = len(pts) - 1
        for i in range(len(pts)):
            xi, yi = pts[i]
            xj, yj = pts[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside

    def to_pixels(self, width: int, height: int) -> list[tuple[int, int]]:
        """Vertices in pixel coordinates of a ``width`` x ``height`` image."""
        return [(round(x * (width - 1)), round(y * (height - 1))) for x, y in self.points]
