"""InfluxDB v2 API backend (2.x, 3.x, Cloud, 1.8+): line protocol to ``/api/v2/write?org=&bucket=&precision=ms``
with token auth; InfluxQL reads on the v1-compatible ``/query``.

The write is one documented HTTP request, so it is made directly, like the v1 backend's, on one
kept-alive connection (:mod:`hub.series.poster`; queries use httpx): the influxdb-client library
would add nothing here (its batching mode drops points after its retries, and batching, retries and
spooling are the :class:`~hub.series.writer.SeriesWriter`'s job).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

import httpx

from hub.series.base import SeriesPoint, SeriesRow, StoreError
from hub.series.influxql import InfluxQLReader, error_text, http_error
from hub.series.lineproto import LineProtocolError, encode_point
from hub.series.poster import LinePoster

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S: Final = 10.0


class InfluxV2Store:
    """A :class:`~hub.series.base.SeriesStore` on the InfluxDB v2 write API (url, token, org, bucket)."""

    name = "influxdb-v2"
    prefers_lines = True

    def __init__(self, url: str, token: str, org: str, bucket: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.org = org
        self.bucket = bucket
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, headers={"Authorization": f"Token {token}"})
        self._poster = LinePoster(
            self.url,
            "/api/v2/write",
            {"org": org, "bucket": bucket, "precision": "ms"},
            timeout_s=timeout_s,
            authorization=f"Token {token}",
        )
        self._reader = InfluxQLReader(self._http, bucket, None)

    def write_lines(self, lines: Sequence[str]) -> None:
        """POST the lines as one request; map failures to :class:`StoreError`."""
        if not lines:
            return
        status, content, retry_after = self._poster.post("\n".join(lines).encode("utf-8"))
        if status in (200, 204):
            return
        raise http_error(status, error_text(content), retry_after, "write")

    def write(self, points: Sequence[SeriesPoint]) -> None:
        """Encode and write points; a point that cannot be encoded fails the call as a bad line."""
        lines: list[str] = []
        for index, point in enumerate(points):
            try:
                lines.append(encode_point(point))
            except LineProtocolError as exc:
                raise StoreError(str(exc), retryable=False, status=400, bad_lines=[index]) from exc
        self.write_lines(lines)

    def query(
        self, *, device: str, metric: str, start_ms: int, end_ms: int, every_s: int, measurement: str | None = None
    ) -> list[SeriesRow]:
        """Mean of ``metric`` per ``every_s`` bucket via InfluxQL on ``/query``."""
        return self._reader.query(
            device=device, metric=metric, start_ms=start_ms, end_ms=end_ms, every_s=every_s, measurement=measurement
        )

    def count(self, measurement: str, *, device: str | None = None, site: str | None = None) -> int:
        """Points of ``measurement`` via ``SELECT count(*)`` on ``/query``."""
        return self._reader.count(measurement, device=device, site=site)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._poster.close()
        self._http.close()
