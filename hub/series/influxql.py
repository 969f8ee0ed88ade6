"""InfluxQL reads and HTTP error mapping shared by the InfluxDB backends.

Reads use InfluxQL over ``/query``, which InfluxDB 1.x answers natively and
2.x/3.x answer on their v1-compatible endpoint. Identifiers and values are
always quoted and escaped here -- nothing from a request is interpolated raw.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Final

import httpx

from hub.series.base import CONFIG_STATUSES, SeriesRow, StoreError

logger = logging.getLogger(__name__)

#: HTTP statuses a store may answer while it is overloaded or restarting.
RETRY_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_ERROR_CHARS: Final = 500


def quote_ident(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def quote_string(value: str) -> str:
    """A single-quoted InfluxQL string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def source(measurement: str | None, rp: str | None) -> str:
    """The FROM clause target: ``"rp"."m"``, ``"m"`` or every measurement (``/.*/``)."""
    target = quote_ident(measurement) if measurement is not None else "/.*/"
    return f"{quote_ident(rp)}.{target}" if rp else target


def mean_query(
    *, device: str, metric: str, start_ms: int, end_ms: int, every_s: int, measurement: str | None, rp: str | None
) -> str:
    """``SELECT mean(metric) ... GROUP BY time(Ns) fill(none)`` for one device in [start, end)."""
    for name, value in (("start_ms", start_ms), ("end_ms", end_ms), ("every_s", every_s)):
        if type(value) is not int:
            raise ValueError(f"{name} must be an int, got {value!r}")
    if every_s <= 0:
        raise ValueError(f"every_s must be positive, got {every_s}")
    return (
        f"SELECT mean({quote_ident(metric)}) FROM {source(measurement, rp)}"
        f" WHERE {quote_ident('device')} = {quote_string(device)}"
        f" AND time >= {start_ms}ms AND time < {end_ms}ms"
        f" GROUP BY time({every_s}s) fill(none)"
    )


def count_query(measurement: str, device: str | None, rp: str | None, site: str | None = None) -> str:
    """``SELECT count(*)`` over all time for a measurement (optionally one device, one site)."""
    query = f"SELECT count(*) FROM {source(measurement, rp)}"
    tags = [(name, value) for name, value in (("device", device), ("site", site)) if value is not None]
    if tags:
        query += " WHERE " + " AND ".join(f"{quote_ident(name)} = {quote_string(value)}" for name, value in tags)
    return query


def _series(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    results = body.get("results") or []
    if body.get("error"):
        raise StoreError(f"query failed: {body['error']}", retryable=False)
    series: list[Mapping[str, Any]] = []
    for result in results:
        if result.get("error"):
            raise StoreError(f"query failed: {result['error']}", retryable=False)
        series.extend(result.get("series") or [])
    return series


def mean_rows(body: Mapping[str, Any]) -> list[SeriesRow]:
    """Rows of a mean query answer (``epoch=ms``), merged across measurements and sorted by time."""
    merged: dict[int, float | None] = {}
    for series in _series(body):
        for ts, value in series.get("values") or []:
            if int(ts) not in merged or merged[int(ts)] is None:
                merged[int(ts)] = None if value is None else float(value)
    return [SeriesRow(ts, merged[ts]) for ts in sorted(merged)]


def count_value(body: Mapping[str, Any]) -> int:
    """Points counted by a ``count(*)`` answer: the largest per-field count (all fields of a point share it)."""
    best = 0
    for series in _series(body):
        for row in series.get("values") or []:
            for value in row[1:]:
                if isinstance(value, int | float) and not math.isnan(value):
                    best = max(best, int(value))
    return best


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_text(body: bytes | str | None) -> str:
    """The server's reason from an error body (``{"error": ..}`` in 1.x, ``{"message": ..}`` in 2.x)."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()[:MAX_ERROR_CHARS]
    if isinstance(parsed, dict):
        for key in ("error", "message"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])[:MAX_ERROR_CHARS]
    return text.strip()[:MAX_ERROR_CHARS]


def http_error(status: int, reason: str, retry_after_header: str | None, what: str) -> StoreError:
    """Map an HTTP error answer to a :class:`StoreError` the writer knows how to handle."""
    message = f"{what}: HTTP {status}: {reason}" if reason else f"{what}: HTTP {status}"
    if status in RETRY_STATUSES or status >= 500:
        return StoreError(message, retryable=True, retry_after_s=retry_after(retry_after_header), status=status)
    if status in CONFIG_STATUSES:
        return StoreError(message, retryable=True, status=status)
    # 400 / 422 / 413 and any other 4xx: this batch is the problem; the writer bisects it.
    return StoreError(reason or message, retryable=False, status=status)


class InfluxQLReader:
    """Runs InfluxQL over ``/query`` with an httpx client (basic or token auth done by the client)."""

    def __init__(self, client: httpx.Client, db: str, rp: str | None) -> None:
        self.client = client
        self.db = db
        self.rp = rp

    def run(self, query: str) -> Mapping[str, Any]:
        """Run one statement; return the decoded JSON answer or raise :class:`StoreError`."""
        try:
            response = self.client.get("/query", params={"db": self.db, "q": query, "epoch": "ms"})
        except httpx.HTTPError as exc:
            raise StoreError(f"query: {exc!r}", retryable=True) from exc
        if response.status_code != 200:
            raise http_error(
                response.status_code, error_text(response.content), response.headers.get("Retry-After"), "query"
            )
        body: Mapping[str, Any] = response.json()
        return body

    def query(
        self, *, device: str, metric: str, start_ms: int, end_ms: int, every_s: int, measurement: str | None = None
    ) -> list[SeriesRow]:
        """Mean of ``metric`` per bucket for ``device`` in [start, end)."""
        q = mean_query(
            device=device,
            metric=metric,
            start_ms=start_ms,
            end_ms=end_ms,
            every_s=every_s,
            measurement=measurement,
            rp=self.rp,
        )
        return mean_rows(self.run(q))

    def count(self, measurement: str, *, device: str | None = None, site: str | None = None) -> int:
        """Points stored for ``measurement`` (optionally one device, one site)."""
        return count_value(self.run(count_query(measurement, device, self.rp, site)))
