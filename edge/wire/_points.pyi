"""Type stub of the native point builder (edge/wire/_points.c)."""

from typing import Any

def build_points(
    raw_points: list[Any],
    default_ts: int,
    known: set[str],
    unset: object,
    point_type: type[Any],
    ts_slot: object,
    metrics_slot: object,
    max_metrics: int,
    min_ts: int,
    max_ts: int,
) -> tuple[tuple[Any, ...], int] | None: ...
