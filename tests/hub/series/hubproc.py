"""`gridsentinel hub run` as a real process writing to influxd, for the fault tests (kill -9, full disk)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from simulators.loadgen import LoadResult, LoadSpec, run_load
from tests.hub.conftest import ADMIN_HEADERS, ADMIN_TOKEN
from tests.servers import wait_until


class HubProcess:
    """Starts the hub (again) with the same data dir, ports and log; the admin API client is ``client``."""

    def __init__(
        self,
        *,
        mqtt_url: str,
        influx_url: str,
        db: str,
        data_dir: Path,
        log: Path,
        http_port: int,
        client_id: str,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.args = [
            sys.executable, "-m", "edge.cli", "hub", "run", "--mqtt-url", mqtt_url, "--client-id", client_id,
            "--data-dir", str(data_dir), "--http-port", str(http_port),
            "--series", "influxdb-v1", "--series-url", influx_url, "--series-db", db, *extra,
        ]  # fmt: skip
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=2, headers=ADMIN_HEADERS)

    def start(self) -> None:
        """Start the process and wait until /healthz says it is healthy (broker, store, state DB)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "GRIDSENTINEL_ADMIN_TOKEN": ADMIN_TOKEN},
            )  # fmt: skip
        wait_until(self._healthy, 30, what="hub healthy (broker connected)")

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def metric(self, name: str) -> float:
        """One unlabelled sample from /metrics (0 when absent)."""
        for line in self.client.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 20 s) if still running; close the client."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.client.close()


class BackgroundLoad:
    """The load generator on a thread while a test breaks things; :meth:`join` gives its result."""

    def __init__(self, spec: LoadSpec) -> None:
        self._results: list[LoadResult] = []
        self._thread = threading.Thread(target=lambda: self._results.append(run_load(spec)), daemon=True)

    def start(self) -> None:
        """Start publishing."""
        self._thread.start()

    def join(self, timeout: float = 60.0) -> LoadResult | None:
        """Wait for the load to end (None if it did not, or failed)."""
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)
        return self._results[0] if self._results else None
