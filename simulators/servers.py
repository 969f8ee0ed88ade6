"""The servers a scenario or the fleet bench runs against: a broker, a series store and a hub process.

- :class:`MosquittoBroker`: a real ``mosquitto`` on a free loopback port, with a config
  that never drops QoS 1 bursts and keeps sessions across restarts (persistence);
- :class:`EmbeddedBrokerServer`: the hub's in-process Python broker when mosquitto is
  not installed;
- :class:`InfluxServer`: a real InfluxDB 1.x ``influxd`` on free loopback ports in a work
  dir, for scenarios with ``store: influxdb-v1``; ``kill`` + ``start`` is an outage that
  keeps its data (same ports, same data dir);
- :class:`HubProcess`: ``python -m simulators.servers hub ...`` in a child
  process, so a scenario can SIGKILL it like a real crash and start a new one on the
  same data dir. The child can run the case SLA sweep more often than the hub's 30 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import httpx

from simulators.bench.util import NO_DROP_MOSQUITTO_CONF, influxd_conf

logger = logging.getLogger(__name__)


class ServerError(RuntimeError):
    """A server did not start (the message says which and why)."""


def free_port() -> int:
    """A free TCP port on loopback (may be taken again before use; callers retry)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker(Protocol):
    """A broker the runner can restart."""

    port: int

    def start(self) -> None:
        """Start listening on ``port``."""
        ...

    def stop(self) -> None:
        """Stop (abruptly is fine)."""
        ...


class MosquittoBroker:
    """A real mosquitto on loopback, config that never drops, persistent sessions."""

    def __init__(self, workdir: Path, port: int | None = None, max_connections: int = -1) -> None:
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if binary is None:
            raise ServerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.max_connections = max_connections
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"max_connections {self.max_connections}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            *NO_DROP_MOSQUITTO_CONF,
            f"log_dest file {self.workdir}/mosquitto.log",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until it accepts connections."""
        conf = self._write_config()
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.workdir
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise ServerError(f"mosquitto exited with {self.proc.returncode}: {err.strip()}")
            if time.monotonic() > deadline:
                raise ServerError(f"mosquitto did not listen on {self.port} within {timeout:g}s")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGKILL: a broker crash (sessions survive up to the last autosave)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class EmbeddedBrokerServer:
    """The hub's in-process broker on a fixed port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._broker: Any = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start listening."""
        from hub.broker import ThreadedBroker

        self._broker = ThreadedBroker("127.0.0.1", self.port)
        self._broker.start()

    def stop(self) -> None:
        """Stop (its sessions are in memory and are lost)."""
        if self._broker is not None:
            self._broker.stop()
            self._broker = None


def _influxql_string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxServer:
    """A real InfluxDB 1.x ``influxd`` (Debian package ``influxdb``) on free loopback ports.

    Its config, meta, data and WAL live in ``workdir``; ``kill()`` then ``start()`` brings
    the same server back on the same ports with the data it had acknowledged (1.x fsyncs
    its WAL before answering a write).
    """

    def __init__(self, workdir: Path, db: str = "gridsentinel") -> None:
        binary = shutil.which("influxd") or ("/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None)
        if binary is None:
            raise ServerError("influxd is not installed (Debian: apt-get install influxdb)")
        self.binary = binary
        self.workdir = workdir
        self.db = db
        self.port = free_port()
        self.rpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "influxd.log"
        self.starts = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "influxd.conf"
        conf.write_text(influxd_conf(self.workdir, self.port, self.rpc_port))
        return conf

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until ``/ping`` answers, then make sure the database exists."""
        conf = self._write_config()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-config", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise ServerError(f"influxd exited with {self.proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"influxd did not answer /ping on {self.port} within {timeout:g}s ({self.log_path})")
            time.sleep(0.05)
        self.query(f'CREATE DATABASE "{self.db}"', with_db=False)

    def kill(self) -> None:
        """SIGKILL: a crash of the database server (acknowledged writes are in its fsynced WAL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def query(self, q: str, *, with_db: bool = True) -> dict[str, Any]:
        """Run InfluxQL (POST, so CREATE works too); raise :class:`ServerError` on an error answer."""
        params = {"q": q, "epoch": "ms"}
        if with_db:
            params["db"] = self.db
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

    def point_times(self, device: str | None = None, measurement: str | None = None) -> dict[str, set[int]]:
        """Device id -> the distinct timestamps (ms) of its stored points, over all time.

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


class HubProcess:
    """The hub in a child process on a data dir."""

    def __init__(
        self,
        data_dir: Path,
        mqtt_url: str,
        *,
        sla_sweep_s: float | None = None,
        influx: tuple[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.mqtt_url = mqtt_url
        self.sla_sweep_s = sla_sweep_s
        #: (url, db) of an InfluxDB 1.x series store; None: the hub's embedded store in its data dir
        self.influx = influx
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        """The REST API base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until ``/healthz`` answers with the broker connected."""
        cmd = [sys.executable, "-m", "simulators.servers", "hub", "--data-dir", str(self.data_dir)]
        cmd += ["--mqtt-url", self.mqtt_url, "--http-port", str(self.http_port)]
        if self.sla_sweep_s:
            cmd += ["--sla-sweep", str(self.sla_sweep_s)]
        if self.influx is not None:
            cmd += ["--series", "influxdb-v1", "--series-url", self.influx[0], "--series-db", self.influx[1]]
        log = (self.data_dir / "hub.log").open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=Path.cwd())
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.data_dir / "hub.log").read_text(errors="replace")[-2000:]
                raise ServerError(f"the hub exited with {self.proc.returncode}:\n{tail}")
            try:
                r = httpx.get(f"{self.base_url}/healthz", timeout=1.0)
                if r.json().get("broker_connected"):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        raise ServerError(f"the hub did not become healthy within {timeout:g}s (log: {self.data_dir / 'hub.log'})")

    def kill(self) -> None:
        """SIGKILL: nothing flushed, like a power loss of the hub machine."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait (the hub flushes and exits)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def run_hub(args: argparse.Namespace) -> int:
    """The child side of :class:`HubProcess`."""
    from hub.config import HubSettings
    from hub.service import Hub

    # demo mode: simulated people act through the X-Actor header (no tokens to hand out)
    values: dict[str, Any] = {
        "mqtt_url": args.mqtt_url,
        "http_port": args.http_port,
        "data_dir": args.data_dir,
        "client_id": "scenario-hub",
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
    """``python -m simulators.servers hub --data-dir D --mqtt-url U --http-port P [--series ...]``."""
    parser = argparse.ArgumentParser(prog="python -m simulators.servers")
    sub = parser.add_subparsers(dest="what", required=True)
    hub = sub.add_parser("hub", help="run a hub for a scenario")
    hub.add_argument("--data-dir", type=Path, required=True)
    hub.add_argument("--mqtt-url", required=True)
    hub.add_argument("--http-port", type=int, required=True)
    hub.add_argument("--sla-sweep", type=float, default=0.0, help="extra SLA sweep every N seconds")
    hub.add_argument("--series", choices=("embedded", "influxdb-v1"), default="embedded", help="series backend")
    hub.add_argument("--series-url", help="InfluxDB 1.x URL (with --series influxdb-v1)")
    hub.add_argument("--series-db", help="InfluxDB 1.x database (with --series influxdb-v1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    return run_hub(args)


if __name__ == "__main__":
    sys.exit(main())
