"""InfluxDB v2 API backend (2.x, 3.x, Cloud, 1.8+): influxdb-client's synchronous WriteApi with
line-protocol bytes to ``/api/v2/write``; InfluxQL reads on the v1-compatible ``/query`` (token auth).

The client's own batching mode drops points after its retries, so batching,
retries and spooling are the :class:`~hub.series.writer.SeriesWriter`'s job and
this store writes exactly one request per call, with urllib3 retries off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final, cast

import httpx
import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from hub.series.base import SeriesPoint, SeriesRow, StoreError
from hub.series.influxql import InfluxQLReader, error_text, http_error
from hub.series.lineproto import LineProtocolError, encode_point

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S: Final = 10.0
_MS: Final = cast(WritePrecision, WritePrecision.MS)


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    return None if value is None else str(value)


class InfluxV2Store:
    """A :class:`~hub.series.base.SeriesStore` on the InfluxDB v2 write API (url, token, org, bucket)."""

    name = "influxdb-v2"
    prefers_lines = True

    def __init__(self, url: str, token: str, org: str, bucket: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.org = org
        self.bucket = bucket
        self._client = InfluxDBClient(url=self.url, token=token, org=org, timeout=int(timeout_s * 1000), retries=False)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, headers={"Authorization": f"Token {token}"})
        self._reader = InfluxQLReader(self._http, bucket, None)

    def write_lines(self, lines: Sequence[str]) -> None:
        """Write the lines as one request through the synchronous WriteApi."""
        if not lines:
            return
        body = "\n".join(lines).encode("utf-8")
        try:
            self._write_api.write(bucket=self.bucket, org=self.org, record=body, write_precision=_MS)
        except ApiException as exc:
            status = int(exc.status or 0)
            reason = error_text(exc.body) or str(exc.reason or "")
            raise http_error(status, reason, _header(exc.headers, "Retry-After"), "write") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreError(f"write to {self.url}: {exc!r}", retryable=True) from exc

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
        """Close the client and the query connection pool."""
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]
        self._http.close()
