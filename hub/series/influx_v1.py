"""InfluxDB 1.x backend: line protocol to ``/write?db=&rp=&precision=ms`` (one kept-alive ``http.client``
connection, :mod:`hub.series.poster`), InfluxQL reads on ``/query`` (httpx)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

import httpx

from hub.series.base import SeriesPoint, SeriesRow, StoreError
from hub.series.influxql import InfluxQLReader, error_text, http_error, quote_ident
from hub.series.lineproto import LineProtocolError, encode_point
from hub.series.poster import LinePoster

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S: Final = 10.0


class InfluxV1Store:
    """A :class:`~hub.series.base.SeriesStore` on the InfluxDB 1.x HTTP API (user/password auth)."""

    name = "influxdb-v1"
    prefers_lines = True

    def __init__(
        self,
        url: str,
        db: str,
        *,
        rp: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.url = url.rstrip("/")
        self.db = db
        self.rp = rp or None
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._client = httpx.Client(base_url=self.url, timeout=timeout_s, auth=auth)
        self._reader = InfluxQLReader(self._client, db, self.rp)
        params: dict[str, str] = {"db": db, "precision": "ms"}
        if self.rp:
            params["rp"] = self.rp
        authorization = LinePoster.basic(username, password or "") if username else None
        self._poster = LinePoster(self.url, "/write", params, timeout_s=timeout_s, authorization=authorization)
        self._created = False

    def write_lines(self, lines: Sequence[str]) -> None:
        """POST the lines as one request; map failures to :class:`StoreError`."""
        if not lines:
            return
        status, content, retry_after = self._poster.post("\n".join(lines).encode("utf-8"))
        if status in (200, 204):
            return
        reason = error_text(content)
        if status == 404 and "database not found" in reason and not self._created:
            # First run against a fresh server: create the db once (idempotent), then write again.
            self._created = True
            self.ensure_database()
            self.write_lines(lines)
            return
        raise http_error(status, reason, retry_after, "write")

    def write(self, points: Sequence[SeriesPoint]) -> None:
        """Encode and write points; a point that cannot be encoded fails the call as a bad line."""
        lines: list[str] = []
        for index, point in enumerate(points):
            try:
                lines.append(encode_point(point))
            except LineProtocolError as exc:
                raise StoreError(str(exc), retryable=False, status=400, bad_lines=[index]) from exc
        self.write_lines(lines)

    def ensure_database(self) -> None:
        """``CREATE DATABASE`` (a no-op when it exists; needs admin rights when auth is on)."""
        try:
            response = self._client.post("/query", params={"q": f"CREATE DATABASE {quote_ident(self.db)}"})
        except httpx.HTTPError as exc:
            raise StoreError(f"create database: {exc!r}", retryable=True) from exc
        if response.status_code != 200:
            raise http_error(
                response.status_code, error_text(response.content), response.headers.get("Retry-After"), "create db"
            )
        logger.warning("influxdb-v1: created database %s at %s (it did not exist)", self.db, self.url)

    def query(
        self, *, device: str, metric: str, start_ms: int, end_ms: int, every_s: int, measurement: str | None = None
    ) -> list[SeriesRow]:
        """Mean of ``metric`` per ``every_s`` bucket via InfluxQL."""
        return self._reader.query(
            device=device, metric=metric, start_ms=start_ms, end_ms=end_ms, every_s=every_s, measurement=measurement
        )

    def count(self, measurement: str, *, device: str | None = None, site: str | None = None) -> int:
        """Points of ``measurement`` via ``SELECT count(*)``."""
        return self._reader.count(measurement, device=device, site=site)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._poster.close()
        self._client.close()
