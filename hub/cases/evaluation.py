"""Evaluation (综合评价): on-time, closure and rework rates, response/handling times, satisfaction.

:func:`evaluate` is pure over :class:`CaseStat` records; :func:`run_evaluation`
reads them from the database for a period and, when a series writer is present,
also writes one ``case_eval`` point per group for Grafana.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select

from hub.cases.errors import InvalidInputError
from hub.cases.models import CaseRow
from hub.cases.records import scope_of
from hub.series.base import SeriesPoint

if TYPE_CHECKING:
    from hub.cases.calendar import WorkingCalendar
    from hub.cases.service import CaseService

logger = logging.getLogger(__name__)
GROUPINGS: Final = ("grid", "community", "street", "district", "worker", "force", "all")
#: Groupings by a level of the grid-code hierarchy: the unit is the code's prefix of this length.
LEVEL_LENGTHS: Final[dict[str, int]] = {"district": 6, "street": 9, "community": 12}
DONE: Final = frozenset({"closed", "evaluated"})
DROPPED: Final = frozenset({"cancelled", "merged"})
#: An alarm that reached the hub this long after the device raised it counts as late.
LATE_ALARM_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class CaseStat:
    """The facts about one case that evaluation needs."""

    grid: str | None
    worker: str | None
    force: str | None
    state: str
    created_ms: int
    accepted_ms: int | None
    closed_ms: int | None
    breached: bool
    rework_count: int
    satisfaction: int | None
    #: Device cases: how long after the device raised the alarm the hub received it (an alarm
    #: replayed after an outage arrives late; nobody could act on it before).
    alarm_late_ms: int | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def metrics(stats: Sequence[CaseStat]) -> dict[str, Any]:
    """The evaluation metrics of one group of cases."""
    counted = [c for c in stats if c.state not in DROPPED]
    done = [c for c in counted if c.state in DONE]
    response = [(c.accepted_ms - c.created_ms) / 1000 for c in counted if c.accepted_ms is not None]
    handling = [(c.closed_ms - c.accepted_ms) / 1000 for c in done if c.closed_ms and c.accepted_ms]
    scores = [c.satisfaction for c in done if c.satisfaction is not None]
    late = [c.alarm_late_ms / 1000 for c in counted if c.alarm_late_ms is not None and c.alarm_late_ms >= 0]
    return {
        "cases": len(counted),
        "closed": len(done),
        "closure_rate": _ratio(len(done), len(counted)),
        "on_time_rate": _ratio(sum(1 for c in done if not c.breached), len(done)),
        "rework_rate": _ratio(sum(1 for c in done if c.rework_count > 0), len(done)),
        "response_s_median": statistics.median(response) if response else None,
        "response_s_p90": percentile(response, 90),
        "handling_s_median": statistics.median(handling) if handling else None,
        "handling_s_p90": percentile(handling, 90),
        "satisfaction": statistics.fmean(scores) if scores else None,
        "evaluated": len(scores),
        "late_alarms": sum(1 for s in late if s >= LATE_ALARM_S),
        "alarm_lateness_s_median": statistics.median(late) if late else None,
        "alarm_lateness_s_max": max(late) if late else None,
    }


def evaluate(stats: Iterable[CaseStat], by: str) -> list[dict[str, Any]]:
    """Metrics per grid, community, street, district, worker, force or overall ('all'), sorted by key."""
    if by not in GROUPINGS:
        raise InvalidInputError("bad_grouping", f"by must be one of {', '.join(GROUPINGS)}")
    groups: dict[str, list[CaseStat]] = {}
    length = LEVEL_LENGTHS.get(by)
    for stat in stats:
        if length is not None:
            key = stat.grid[:length] if stat.grid and len(stat.grid) >= length else "(none)"
        else:
            key = "all" if by == "all" else getattr(stat, by) or "(none)"
        groups.setdefault(key, []).append(stat)
    return [{"key": key, **metrics(items)} for key, items in sorted(groups.items())]


def period_bounds(period: str | None, cal: WorkingCalendar) -> tuple[int, int] | None:
    """'2026', '2026-11', '2026-W48' or '2026-11-23' → local [start, end) in epoch ms; None = all time."""
    if not period:
        return None
    try:
        if re.fullmatch(r"\d{4}", period):
            start, end = date(int(period), 1, 1), date(int(period) + 1, 1, 1)
        elif re.fullmatch(r"\d{4}-\d{2}", period):
            y, m = int(period[:4]), int(period[5:])
            start, end = date(y, m, 1), date(y + (m == 12), m % 12 + 1, 1)
        elif m_week := re.fullmatch(r"(\d{4})-W(\d{2})", period):
            start = date.fromisocalendar(int(m_week.group(1)), int(m_week.group(2)), 1)
            end = start + timedelta(days=7)
        else:
            start = date.fromisoformat(period)
            end = start + timedelta(days=1)
    except ValueError as exc:
        raise InvalidInputError("bad_period", f"period {period!r}: use YYYY, YYYY-MM, YYYY-Www or YYYY-MM-DD") from exc

    def ms(d: date) -> int:
        return round(cal.to_epoch(datetime.combine(d, datetime.min.time())) * 1000)

    return ms(start), ms(end)


def run_evaluation(
    svc: CaseService,
    by: str,
    period: str | None = None,
    visible: Callable[[Mapping[str, Any]], bool] | None = None,
    area: str | None = None,
) -> dict[str, Any]:
    """Evaluate cases created in ``period`` (in ``area``, a grid-code prefix; only those ``visible`` accepts).

    Writes ``case_eval`` points if a series writer is set, for whole-hub evaluations only:
    a scoped one is one person's (or one area's) view, not the hub's figure.
    """
    bounds = period_bounds(period, svc.calendar)
    stmt = select(CaseRow)
    if bounds is not None:
        stmt = stmt.where(CaseRow.created_ms >= bounds[0], CaseRow.created_ms < bounds[1])
    if area:
        stmt = stmt.where(CaseRow.grid_code.startswith(area, autoescape=True))
    with svc.sessions() as s:
        stats = [
            CaseStat(
                r.grid_code,
                r.handler_id or r.worker_id,
                r.force_id,
                r.state,
                r.created_ms,
                r.accepted_ms,
                r.closed_ms,
                r.breached,
                r.rework_count,
                r.satisfaction,
                None
                if r.alarm_raised_ms is None or r.alarm_received_ms is None
                else r.alarm_received_ms - r.alarm_raised_ms,
            )
            for r in s.scalars(stmt)
            if visible is None or visible(scope_of(r))
        ]
    rows = evaluate(stats, by)
    writer = None if svc.services is None else svc.services.writer  # figures also go to the series store
    if writer is not None and rows and visible is None and not area:
        _write_series(writer, rows, by, period or "all", svc.now_ms())
    return {"by": by, "period": period, "area": area, "scoped": visible is not None, "groups": rows}


def _write_series(writer: Any, rows: list[dict[str, Any]], by: str, period: str, now_ms: int) -> None:
    points = [
        SeriesPoint(
            "case_eval",
            {"by": by, "key": str(row["key"]), "period": period},
            {k: float(v) for k, v in row.items() if k != "key" and isinstance(v, int | float)},
            now_ms,
        )
        for row in rows
    ]
    send = getattr(writer, "submit", None) or writer.write  # the hub's writer queues with submit()
    try:
        send(points)
    except Exception:
        logger.exception("writing case_eval points failed")
