"""Open-case counts as series points (measurement ``case_stats``) for the Grafana case panels.

Cases live in the state DB; dashboards read InfluxDB. Every ``every_s`` the hub
writes one point per (grid, state) of the open cases: ``open`` (how many),
``yellow`` and ``red`` (how many are near or past their stage time limit, as last
refreshed by the SLA sweep). A (grid, state) that had cases at the last write and
has none now gets one point of zeros, so a panel never keeps showing a count that
is gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import func, select

from hub.cases.machine import OPEN_STATES
from hub.cases.models import CaseRow
from hub.series.base import SeriesPoint

if TYPE_CHECKING:
    from hub.cases.service import CaseService

logger = logging.getLogger(__name__)

MEASUREMENT: Final = "case_stats"
#: Seconds between writes; Grafana's case panels use it as their minimum interval.
DEFAULT_CASE_STATS_S: Final = 30.0
#: Grid tag of cases without a grid (residents' reports outside every cell).
NO_GRID: Final = "none"

Key = tuple[str, str]


def case_stats_points(
    counts: Iterable[tuple[str | None, str, str, int]], previous: Iterable[Key], now_ms: int
) -> tuple[list[SeriesPoint], set[Key]]:
    """Points for ``(grid, state, sla_level, n)`` rows, zeros for ``previous`` keys now empty; and the new keys."""
    totals: dict[Key, dict[str, int]] = {}
    for grid, state, level, n in counts:
        fields = totals.setdefault((grid or NO_GRID, state), {"open": 0, "yellow": 0, "red": 0})
        fields["open"] += n
        if level in ("yellow", "red"):
            fields[level] += n
    for key in previous:
        totals.setdefault(key, {"open": 0, "yellow": 0, "red": 0})
    points = [
        SeriesPoint(MEASUREMENT, {"grid": grid, "state": state}, dict(fields), now_ms)
        for (grid, state), fields in sorted(totals.items())
    ]
    return points, {key for key, fields in totals.items() if fields["open"]}


def open_case_counts(svc: CaseService, area: str | None = None) -> list[tuple[str | None, str, str, int]]:
    """``(grid, state, sla_level, n)`` of the open cases (in ``area``, a grid-code prefix, when given)."""
    stmt = (
        select(CaseRow.grid_code, CaseRow.state, CaseRow.sla_level, func.count())
        .where(CaseRow.state.in_([s.value for s in OPEN_STATES]))
        .group_by(CaseRow.grid_code, CaseRow.state, CaseRow.sla_level)
    )
    if area:
        stmt = stmt.where(CaseRow.grid_code.startswith(area, autoescape=True))
    with svc.sessions() as s:
        return [(grid, state, level, int(n)) for grid, state, level, n in s.execute(stmt)]


class CaseStatsWriter:
    """Counts open cases in the state DB and submits them to the hub's series writer."""

    def __init__(self, svc: CaseService, submit: Callable[[Sequence[SeriesPoint]], Any]) -> None:
        self.svc = svc
        self.submit = submit
        self._written: set[Key] = set()
        self._lock = threading.Lock()

    def write(self) -> int:
        """Write one snapshot now; returns the number of points submitted."""
        with self._lock:
            points, self._written = case_stats_points(open_case_counts(self.svc), self._written, self.svc.now_ms())
            if points:
                self.submit(points)
        return len(points)

    def task(self, every_s: float = DEFAULT_CASE_STATS_S) -> Callable[[threading.Event], None]:
        """A ctx task writing a snapshot every ``every_s`` seconds until stopped."""

        def run(stop: threading.Event) -> None:
            while not stop.wait(every_s):
                try:
                    self.write()
                except Exception:  # loop boundary: the DB may be busy; the next pass writes again
                    logger.exception("case_stats series write failed")

        return run
