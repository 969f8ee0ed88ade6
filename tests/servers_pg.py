"""A real PostgreSQL 15 for integration tests: initdb + postgres in a temp dir on a free loopback port.

As root, the server runs as the ``postgres`` user (via ``setpriv``) (PostgreSQL refuses root), which
owns the temp dir; the unix socket also lives in the temp dir. ``fsync=off`` since
the data is thrown away.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.servers import free_port, port_open, servers_required

PG_BIN = Path(os.environ.get("GS_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _require_pg() -> None:
    if not (PG_BIN / "initdb").exists():
        message = f"{PG_BIN}/initdb not found: install the Debian package 'postgresql' (the README test command does)"
        if servers_required():
            pytest.fail(message)
        pytest.skip(message)


class PostgresServer:
    """A throw-away PostgreSQL cluster; :meth:`create_database` gives each test a fresh database."""

    def __init__(self) -> None:
        _require_pg()
        self.dir = Path(tempfile.mkdtemp(prefix="gs-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            # setpriv execs in place, so signals reach postgres itself (runuser would sit in between)
            self._as_user = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        self._counter = 0

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=60)

    def start(self, timeout: float = 30.0) -> None:
        """initdb and start the server; wait until it accepts connections."""
        data = self.dir / "data"
        self._run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._launch(timeout)

    def shut_down(self) -> None:
        """Stop the server (fast shutdown: clients are cut off) and keep its data for :meth:`start_again`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(20)
        self.proc = None

    def start_again(self, timeout: float = 30.0) -> None:
        """Start the server on the same port and data after :meth:`shut_down`."""
        self._launch(timeout)

    def _launch(self, timeout: float) -> None:
        data = self.dir / "data"
        self.proc = subprocess.Popen(
            [
                *self._as_user,
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.dir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=100",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "postgres.log", "ab"),  # noqa: SIM115 - the server owns it for its lifetime
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.dir / 'postgres.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not listen on {self.port} within {timeout}s")
            time.sleep(0.05)
        self._wait_ready(deadline)

    def _wait_ready(self, deadline: float) -> None:
        import psycopg

        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def dsn(self, database: str) -> str:
        """libpq connection string for ``database``."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3) for ``database``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, template: str | None = None, name: str | None = None) -> str:
        """A fresh database (empty, or a copy of ``template``); returns its SQLAlchemy URL."""
        import psycopg

        self._counter += 1
        name = name or f"gs_test_{self._counter}"
        suffix = f" TEMPLATE {template}" if template else ""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{suffix}")
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown and remove the temp dir."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # immediate shutdown: the data is thrown away anyway
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
