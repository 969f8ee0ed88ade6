"""The series store seam shared by the embedded store and the InfluxDB backends.

Schema (DESIGN.md section 5): one measurement per device kind (``camera``,
``kiosk``, ``sensor``; plus ``device_status`` and ``incident`` series), tags
``site``, ``grid``, ``device``, numeric fields, device timestamps in ms so a
re-write of the same point is idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

from edge.wire import MetricValue


class SeriesPoint(NamedTuple):
    """One row of the time-series schema (a named tuple: ingest builds one per point, and a frozen
    dataclass costs about five times as much to construct)."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, MetricValue]
    ts_ms: int


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """One bucket of a history query: bucket start (ms) and the aggregated value (None if empty)."""

    ts_ms: int
    value: float | None


#: HTTP statuses that reject every write (auth, missing db/bucket): spool, alert and wait -- never dead-letter.
CONFIG_STATUSES: Final = frozenset({401, 403, 404})


class StoreError(RuntimeError):
    """A write or query failed. ``retryable``/``retry_after_s`` tell the writer what to do."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after_s: float | None = None,
        status: int | None = None,
        bad_lines: Sequence[int] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.status = status
        self.bad_lines = tuple(bad_lines)


class PointWriter(Protocol):
    """Takes points for the series store without blocking (the hub's :class:`~hub.series.writer.SeriesWriter`)."""

    def submit(self, points: Sequence[Any]) -> object:
        """Queue points (the hub's writer returns a ticket for its durability checks)."""
        ...


class SeriesStore(Protocol):
    """Where points go and where history charts read from."""

    name: str
    #: True when the store speaks line protocol natively, so the writer should encode and batch lines.
    prefers_lines: bool

    def write(self, points: Sequence[SeriesPoint]) -> None:
        """Store ``points`` (idempotent per measurement+tags+timestamp); raise :class:`StoreError`."""
        ...

    def write_lines(self, lines: Sequence[str]) -> None:
        """Store line-protocol lines (ms timestamps), e.g. replayed from the spool; raise :class:`StoreError`."""
        ...

    def query(
        self, *, device: str, metric: str, start_ms: int, end_ms: int, every_s: int, measurement: str | None = None
    ) -> list[SeriesRow]:
        """Mean of ``metric`` for ``device`` per ``every_s`` bucket in [start, end)."""
        ...

    def count(self, measurement: str, *, device: str | None = None, site: str | None = None) -> int:
        """How many points of ``measurement`` are stored, optionally of one device and/or one site
        (tests and benches count with this)."""
        ...

    def close(self) -> None:
        """Flush and release connections."""
        ...
