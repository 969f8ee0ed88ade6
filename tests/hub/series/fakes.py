"""A scripted in-memory store for the writer's pure batching/retry logic (real servers are tested elsewhere)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from hub.series.base import SeriesPoint, SeriesRow, StoreError
from hub.series.lineproto import encode_point


class ScriptedStore:
    """Records writes; raises queued errors first; refuses any line containing ``poison`` with a 400."""

    name = "scripted"

    def __init__(self, *, prefers_lines: bool = True) -> None:
        self.prefers_lines = prefers_lines
        self.lines: list[str] = []
        self.calls: list[tuple[float, int]] = []  # (monotonic time, lines in the request)
        self.errors: list[StoreError] = []
        self.down = False
        self.lock = threading.Lock()

    def write_lines(self, lines: Sequence[str]) -> None:
        """Store lines unless an error is scripted or a line is poisoned."""
        with self.lock:
            self.calls.append((time.monotonic(), len(lines)))
            if self.down:
                raise StoreError("connection refused", retryable=True)
            if self.errors:
                raise self.errors.pop(0)
            if any("poison" in line for line in lines):
                raise StoreError('partial write: field type conflict: "poison"', retryable=False, status=400)
            self.lines.extend(lines)

    def write(self, points: Sequence[SeriesPoint]) -> None:
        """Encode and store."""
        self.write_lines([encode_point(p) for p in points])

    def query(
        self, *, device: str, metric: str, start_ms: int, end_ms: int, every_s: int, measurement: str | None = None
    ) -> list[SeriesRow]:
        """Not used by the writer."""
        return []

    def count(self, measurement: str, *, device: str | None = None, site: str | None = None) -> int:
        """Lines stored."""
        with self.lock:
            return len(self.lines)

    def close(self) -> None:
        """Nothing to close."""
