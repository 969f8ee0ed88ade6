"""Real time-series servers for integration tests: ``influxd`` (1.x API) and VictoriaMetrics.

Each runs in its own temp dir on free loopback ports (influxd also needs a free
RPC ``bind-address``), with reporting off, and is ready once ``/ping`` answers.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from simulators.bench.util import influxd_conf
from tests.servers import ServerProcess, free_port, require_binary


def http_ok(url: str, timeout: float = 0.5) -> bool:
    """True when ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return 200 <= status < 300
    except (urllib.error.URLError, OSError):
        return False


class _ServerProcess(ServerProcess):
    """Start plumbing shared by the servers below (stop/kill/restart come from :class:`ServerProcess`)."""

    name = "server"
    stop_timeout = 15.0

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The argv that starts the server."""
        raise NotImplementedError

    def start(self, timeout: float = 20.0) -> None:
        """Start the server and wait until ``/ping`` answers."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while not http_ok(f"{self.url}/ping"):
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {tail}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not answer /ping on {self.port} within {timeout}s")
            time.sleep(0.05)


class InfluxdServer(_ServerProcess):
    """A real InfluxDB 1.x ``influxd`` (Debian package ``influxdb``)."""

    name = "influxd"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = require_binary("influxd", "influxdb")
        super().__init__(workdir, port)
        self.rpc_port = free_port()

    def write_config(self) -> Path:
        """Write influxd.conf into the work dir and return its path."""
        conf = self.workdir / "influxd.conf"
        conf.write_text(influxd_conf(self.workdir, self.port, self.rpc_port))
        return conf

    def command(self) -> list[str]:
        """``influxd -config influxd.conf``."""
        return [self.binary, "-config", str(self.write_config())]

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL (POST, so CREATE/DROP work too) and return the JSON answer."""
        params = {"q": q, "epoch": "ms"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
        return body

    def create_db(self, db: str) -> None:
        """``CREATE DATABASE``."""
        self.query(f'CREATE DATABASE "{db}"')

    def count(self, db: str, measurement: str, field: str) -> int:
        """``SELECT count(field)`` over all time (0 when nothing is stored)."""
        body = self.query(f'SELECT count("{field}") FROM "{measurement}"', db)
        series = body["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0


class VictoriaMetricsServer(_ServerProcess):
    """A real single-node VictoriaMetrics, which accepts line protocol on ``/api/v2/write``."""

    name = "victoria-metrics"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = require_binary("victoria-metrics", "victoria-metrics")
        super().__init__(workdir, port)

    def command(self) -> list[str]:
        """Flags: loopback only, long retention, 1 ms dedup so a re-write keeps one sample."""
        return [
            self.binary,
            f"-storageDataPath={self.workdir}/data",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",
            "-dedup.minScrapeInterval=1ms",
            "-search.latencyOffset=0s",
            "-loggerLevel=ERROR",
            "-memory.allowedBytes=64MB",
        ]

    def force_flush(self) -> None:
        """Make just-ingested samples searchable."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10):
            pass

    def export(self, match: str) -> list[dict[str, Any]]:
        """Samples of the series matching ``match``, one JSON line per series (``/api/v1/export``).

        Not ``reduce_mem_usage=1``: that sends one line per stored block, so a series whose samples sit in
        two parts comes as two lines with the same labels (and re-written duplicates undeduplicated)."""
        self.force_flush()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as response:
            return [json.loads(line) for line in response.read().splitlines() if line.strip()]
