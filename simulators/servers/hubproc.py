"""The hub in a child process (:class:`HubProcess`), so a scenario or a test can SIGKILL it like a real
crash and start a new one on the same data dir.

The child is either the product command (``python -m edge.cli hub run``) or, for scenarios,
``python -m simulators.servers.hubproc`` (:func:`main`): the hub in demo mode (simulated people act
through the ``X-Actor`` header) that can run the case SLA sweep more often than the hub's 30 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from hub.config import HubSettings
from hub.service import Hub
from simulators.servers.base import ServerError, free_port, kill_process, terminate_process

logger = logging.getLogger(__name__)


class HubProcess:
    """The hub in a child process on ``data_dir``; :attr:`client` talks to its API with ``headers``.

    ``scenario=True`` runs the scenario child (demo mode, ``sla_sweep_s``); else ``gridsentinel hub run``
    with ``extra`` flags. ``influx`` is (url, db) of an InfluxDB 1.x series store (None: the embedded one).
    :meth:`start` waits until ``/healthz`` reports ``until`` true (``broker_connected``, or ``ok``: broker,
    store and state DB all healthy).
    """

    def __init__(
        self,
        data_dir: Path,
        mqtt_url: str,
        *,
        http_port: int | None = None,
        influx: tuple[str, str] | None = None,
        scenario: bool = True,
        sla_sweep_s: float | None = None,
        client_id: str = "scenario-hub",
        extra: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        log: Path | None = None,
        until: str = "broker_connected",
    ) -> None:
        self.data_dir = data_dir
        self.mqtt_url = mqtt_url
        self.http_port = http_port or free_port()
        self.influx = influx
        self.scenario = scenario
        self.sla_sweep_s = sla_sweep_s
        self.client_id = client_id
        self.extra = tuple(extra)
        self.env = dict(env or {})
        self.log = log or data_dir / "hub.log"
        self.until = until
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.client = httpx.Client(base_url=self.base_url, timeout=2, headers=dict(headers or {}))

    @property
    def base_url(self) -> str:
        """The REST API base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        """The child's argv."""
        if self.scenario:
            cmd = [sys.executable, "-m", "simulators.servers.hubproc"]
            cmd += ["--sla-sweep", str(self.sla_sweep_s)] if self.sla_sweep_s else []
        else:
            cmd = [sys.executable, "-m", "edge.cli", "hub", "run"]
        cmd += ["--mqtt-url", self.mqtt_url, "--client-id", self.client_id]
        cmd += ["--data-dir", str(self.data_dir), "--http-port", str(self.http_port)]
        if self.influx is not None:
            cmd += ["--series", "influxdb-v1", "--series-url", self.influx[0], "--series-db", self.influx[1]]
        return [*cmd, *self.extra]

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until ``/healthz`` reports :attr:`until`; :class:`ServerError` with the log tail
        when the child exits or does not get there within ``timeout``."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=Path.cwd(), env={**os.environ, **self.env}
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise ServerError(f"the hub exited with {self.proc.returncode}:\n{tail}")
            try:
                if self.client.get("/healthz").json().get(self.until):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        raise ServerError(f"the hub did not report {self.until} within {timeout:g}s (log: {self.log})")

    def metric(self, name: str) -> float:
        """One unlabelled sample from /metrics (0 when absent)."""
        for line in self.client.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def kill(self) -> None:
        """SIGKILL: nothing flushed, like a power loss of the hub machine."""
        kill_process(self.proc)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait (the hub flushes and exits; SIGKILL after ``timeout``); close :attr:`client`."""
        terminate_process(self.proc, timeout)
        self.proc = None
        self.client.close()


def run_hub(args: argparse.Namespace) -> int:
    """The scenario child: the hub in demo mode, with an extra SLA sweep every ``--sla-sweep`` seconds."""
    # demo mode: simulated people act through the X-Actor header (no tokens to hand out)
    values: dict[str, Any] = {
        "mqtt_url": args.mqtt_url,
        "http_port": args.http_port,
        "data_dir": args.data_dir,
        "client_id": args.client_id,
        "demo": True,
        "series_backend": args.series,
    }
    if args.series == "influxdb-v1":
        values.update(series_url=args.series_url, series_db=args.series_db)
    settings = HubSettings.model_validate(values)
    settings.series_settings()  # a missing URL or database fails here, with the key named
    hub = Hub(settings)
    if args.sla_sweep:

        def sweep() -> None:
            while not hub.stopping.wait(args.sla_sweep):
                cases = hub.ctx.services.cases if hub.ctx is not None else None
                if cases is not None:
                    try:
                        cases.sweep()
                    except Exception:  # loop boundary: the next sweep tries again
                        logger.exception("SLA sweep failed")

        threading.Thread(target=sweep, name="scenario-sla-sweep", daemon=True).start()
    return hub.run()


def main(argv: list[str] | None = None) -> int:
    """``python -m simulators.servers.hubproc --data-dir D --mqtt-url U --http-port P [--series ...]``."""
    parser = argparse.ArgumentParser(prog="python -m simulators.servers.hubproc")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--mqtt-url", required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--client-id", default="scenario-hub")
    parser.add_argument("--sla-sweep", type=float, default=0.0, help="extra SLA sweep every N seconds")
    parser.add_argument("--series", choices=("embedded", "influxdb-v1"), default="embedded", help="series backend")
    parser.add_argument("--series-url", help="InfluxDB 1.x URL (with --series influxdb-v1)")
    parser.add_argument("--series-db", help="InfluxDB 1.x database (with --series influxdb-v1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    return run_hub(args)


if __name__ == "__main__":
    sys.exit(main())
