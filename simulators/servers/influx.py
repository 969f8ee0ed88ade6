"""Time-series servers: InfluxDB 1.x ``influxd`` (:class:`Influxd`) and single-node VictoriaMetrics
(:class:`VictoriaMetrics`, which takes line protocol on the InfluxDB v2 write API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from simulators.servers.base import ServerError, ServerProcess, free_port, http_ok


def influxd_conf(workdir: Path, http_port: int, rpc_port: int) -> str:
    """influxd.conf for a throwaway server: loopback only, data under ``workdir``, reporting and logs off."""
    w = workdir
    return f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{w}/meta"
  logging-enabled = false
[data]
  dir = "{w}/data"
  wal-dir = "{w}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[coordinator]
  log-queries-after = "0s"
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  max-body-size = 0
  max-row-limit = 0
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""


def _influxql_string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


#: The database the scenarios, the cluster bench and tests that run a whole hub write to.
INFLUX_DB = "gridsentinel"


class Influxd(ServerProcess):
    """A real InfluxDB 1.x ``influxd`` (Debian package ``influxdb``) on free loopback ports (HTTP and RPC).

    Config, meta, data and WAL live in ``workdir``; ``kill()`` then ``start()`` brings the same server back
    on the same ports with the data it had acknowledged (1.x fsyncs its WAL before answering a write).
    With ``db``, every start makes sure that database exists.
    """

    name = "influxd"
    package = "influxdb"

    def __init__(self, workdir: Path, port: int | None = None, *, db: str | None = None) -> None:
        super().__init__(workdir, port)
        self.rpc_port = free_port()
        self.db = db

    def new_ports(self) -> None:
        """Fresh HTTP and RPC ports."""
        super().new_ports()
        self.rpc_port = free_port()

    def ready(self) -> bool:
        """``/ping`` answers."""
        return http_ok(f"{self.url}/ping")

    def command(self) -> list[str]:
        """Write influxd.conf and return ``influxd -config influxd.conf``."""
        conf = self.workdir / "influxd.conf"
        conf.write_text(influxd_conf(self.workdir, self.port, self.rpc_port))
        return [self.binary, "-config", str(conf)]

    def on_started(self) -> None:
        """Create :attr:`db` (if any)."""
        if self.db:
            self.create_db(self.db)

    def query(self, q: str, db: str | None = None, *, with_db: bool = True) -> dict[str, Any]:
        """Run InfluxQL (POST, so CREATE and DROP work too) in ``db`` (default :attr:`db`; none without
        ``with_db``); :class:`ServerError` on an error answer."""
        params = {"q": q, "epoch": "ms"}
        target = db or self.db
        if with_db and target:
            params["db"] = target
        try:
            r = httpx.post(f"{self.url}/query", data=params, timeout=10.0)
        except httpx.HTTPError as exc:
            raise ServerError(f"influxd at {self.url} unreachable: {exc!r}") from exc
        try:
            body: dict[str, Any] = r.json()
        except json.JSONDecodeError as exc:
            raise ServerError(f"influxd answered HTTP {r.status_code} without JSON: {r.text[:200]}") from exc
        errors = [res["error"] for res in body.get("results", []) if "error" in res]
        if r.status_code != 200 or "error" in body or errors:
            raise ServerError(f"influxd refused {q!r}: HTTP {r.status_code} {body.get('error') or errors}")
        return body

    def create_db(self, db: str) -> None:
        """``CREATE DATABASE`` (a no-op when it exists)."""
        self.query(f'CREATE DATABASE "{db}"', with_db=False)

    def count(self, db: str, measurement: str, field: str) -> int:
        """``SELECT count(field)`` over all time (0 when nothing is stored)."""
        body = self.query(f'SELECT count("{field}") FROM "{measurement}"', db)
        series = body["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0

    def point_times(self, device: str | None = None, measurement: str | None = None) -> dict[str, set[int]]:
        """Device id -> the distinct timestamps (ms) of its stored points in :attr:`db`, over all time.

        ``measurement`` limits the search to one measurement (default: all of them, so points
        written before the hub knew the device's kind are counted too).
        """
        source = f'"{measurement}"' if measurement else "/.*/"
        where = f' WHERE "device" = {_influxql_string(device)}' if device else ""
        body = self.query(f'SELECT * FROM {source}{where} GROUP BY "device"')
        times: dict[str, set[int]] = {}
        for result in body.get("results", []):
            for series in result.get("series", []):
                name = str(series.get("tags", {}).get("device", ""))
                column = series["columns"].index("time")
                times.setdefault(name, set()).update(int(row[column]) for row in series.get("values", []))
        return times


def vm_export(url: str, match: str) -> list[dict[str, Any]]:
    """What the VictoriaMetrics at ``url`` holds for the series matching ``match``, after a force flush:
    one JSON object per series (``/api/v1/export``).

    Exported per series (no ``reduce_mem_usage``): the server merges a series' blocks and applies its
    dedup, as a query would; ``reduce_mem_usage=1`` sends one line per stored block, re-written
    duplicates included, which counts a series split over two parts twice or keeps only one of them."""
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/internal/force_flush").raise_for_status()
        response = client.get("/api/v1/export", params={"match[]": match, "start": "0"})
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]


class VictoriaMetrics(ServerProcess):
    """A real single-node VictoriaMetrics: loopback only, long retention, 1 ms dedup (a re-written point
    stays one sample), ``memory`` its cache budget."""

    name = "victoria-metrics"
    package = "victoria-metrics"

    def __init__(self, workdir: Path, port: int | None = None, *, memory: str = "256MB") -> None:
        super().__init__(workdir, port)
        self.memory = memory

    def ready(self) -> bool:
        """``/health`` answers."""
        return http_ok(f"{self.url}/health")

    def command(self) -> list[str]:
        """The flags above."""
        return [
            self.binary,
            f"-storageDataPath={self.workdir}/data",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",
            "-dedup.minScrapeInterval=1ms",
            "-search.latencyOffset=0s",
            "-loggerLevel=ERROR",
            f"-memory.allowedBytes={self.memory}",
        ]

    def force_flush(self) -> None:
        """Make just-ingested samples searchable."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()

    def export(self, match: str) -> list[dict[str, Any]]:
        """Samples of the series matching ``match`` (:func:`vm_export`)."""
        return vm_export(self.url, match)
