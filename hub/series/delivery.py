"""Delivery policy of the series writer: bisecting bad lines out of a batch, retry backoff, and the
writer's stats and default callbacks. Pure logic with injected callbacks and clock (tested without a store).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from hub.series.base import SeriesPoint, StoreError
from hub.series.lineproto import LineProtocolError, describe_point, encode_point

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The longest Retry-After the writer will honour (a misbehaving proxy must not park it for days).
MAX_RETRY_AFTER_S: Final = 3600.0


def write_bisecting(
    items: list[T],
    write: Callable[[list[T]], None],
    on_dead: Callable[[T, str], None],
    on_written: Callable[[int, float], None],
    on_error: Callable[[StoreError], None] = lambda exc: None,
) -> tuple[list[T], StoreError | None]:
    """Write ``items``; isolate bad ones on 400/422/413; return (unwritten items, error) on a retryable error.

    A non-retryable answer splits the part in halves (or drops exactly the
    ``bad_lines`` the store named) until single bad items remain; those go to
    ``on_dead(item, server reason)`` and are never retried. ``on_written(count,
    elapsed_ms)`` is called per successful request. Order is kept: the first
    half is written before the second, and leftovers come back in input order.
    """
    stack: list[list[T]] = [items]
    while stack:
        part = stack.pop()
        started = time.perf_counter()
        try:
            write(part)
        except StoreError as exc:
            on_error(exc)
            if exc.retryable:
                leftover = list(part)
                for rest in reversed(stack):
                    leftover.extend(rest)
                return leftover, exc
            bad = {i for i in exc.bad_lines if 0 <= i < len(part)}
            if bad and exc.status != 413:
                for index in sorted(bad):
                    on_dead(part[index], exc.message)
                rest = [item for i, item in enumerate(part) if i not in bad]
                if rest:
                    stack.append(rest)
            elif len(part) > 1:
                mid = len(part) // 2
                stack.append(part[mid:])
                stack.append(part[:mid])
            else:
                on_dead(part[0], exc.message)
            continue
        on_written(len(part), (time.perf_counter() - started) * 1000.0)
    return [], None


class Backoff:
    """When to try again: Retry-After when the server gives one, else exponential backoff with jitter."""

    def __init__(self, base_s: float = 0.2, max_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.clock = clock
        self.failures = 0
        self.retry_at = 0.0

    def failed(self, retry_after_s: float | None = None) -> float:
        """Record a failure; return the delay before the next attempt."""
        self.failures += 1
        if retry_after_s is not None:
            delay = min(max(retry_after_s, 0.0), MAX_RETRY_AFTER_S)
        else:
            cap = min(self.max_s, self.base_s * 2 ** min(self.failures - 1, 30))
            delay = random.uniform(cap / 2, cap)  # jitter: replicas must not retry in lockstep
        self.retry_at = self.clock() + delay
        return delay

    def succeeded(self) -> None:
        """Reset after a successful write."""
        self.failures = 0
        self.retry_at = 0.0

    def waiting(self) -> bool:
        """True while the next attempt is not due yet."""
        return self.clock() < self.retry_at


@dataclass
class WriterStats:
    """Counters (cumulative) and gauges (current) of a :class:`SeriesWriter`."""

    written_points: int = 0
    batches: int = 0
    retries: int = 0
    errors: int = 0
    dead_lines: int = 0
    dropped_lines: int = 0
    spooled_bytes: int = 0
    spooled_batches: int = 0
    spooled_lines: int = 0
    unspooled_lines: int = 0  # held in memory: the spool could not take them (disk full)
    pending_points: int = 0
    last_write_ms: int = 0
    write_latency_ms: list[float] = field(default_factory=list)


def log_bad_line(line: str, reason: str) -> None:
    """Default ``on_bad_line``: log it loudly."""
    logger.error("series bad line dropped: %s (%s)", line, reason)


def log_alert(kind: str, message: str) -> None:
    """Default ``on_alert``: log it loudly."""
    logger.error("series alert %s: %s", kind, message)


def render_point(point: SeriesPoint) -> str:
    """A point as line protocol for a dead letter, or a readable form when it cannot be encoded."""
    try:
        return encode_point(point)
    except LineProtocolError:
        return describe_point(point)
