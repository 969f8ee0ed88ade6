"""A real PostgreSQL 15: initdb + postgres in a temp dir on a free loopback port.

As root, the server runs as the ``postgres`` user (via ``setpriv``; PostgreSQL refuses root), which owns
the work dir; the unix socket lives there too. ``fsync=off``: the data is thrown away.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg

from simulators.servers.base import MissingBinary, ServerProcess, port_open

PG_BIN = Path(os.environ.get("GS_PG_BIN", "/usr/lib/postgresql/15/bin"))


class Postgres(ServerProcess):
    """A throw-away PostgreSQL cluster; :meth:`create_database` gives each user a fresh database.

    :meth:`shut_down` + :meth:`start_again` is an outage that keeps the data; :meth:`stop` removes it.
    """

    name = "postgres"
    package = "postgresql"

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir or Path(tempfile.mkdtemp(prefix="gs-pg-")))
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
            # setpriv execs in place, so signals reach postgres itself (runuser would sit in between)
            self._as_user = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        self._counter = 0

    def locate(self) -> str:
        """``postgres`` of ``$GS_PG_BIN`` (default PostgreSQL 15's Debian directory)."""
        if not (PG_BIN / "initdb").exists():
            raise MissingBinary(f"{PG_BIN}/initdb not found: install the Debian package 'postgresql'")
        return str(PG_BIN / "postgres")

    def start(self, timeout: float | None = None) -> None:
        """initdb (once) and start the server; wait until it accepts connections."""
        data = self.workdir / "data"
        if not data.exists():
            subprocess.run(
                [*self._as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
        super().start(timeout)

    def command(self) -> list[str]:
        """``postgres`` on loopback, socket in the work dir, durability off."""
        return [
            *self._as_user, self.binary, "-D", str(self.workdir / "data"), "-p", str(self.port), "-h", "127.0.0.1",
            "-k", str(self.workdir), "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=100",
        ]  # fmt: skip

    def ready(self) -> bool:
        """It listens and takes a connection."""
        if not port_open(self.port):
            return False
        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def shut_down(self) -> None:
        """Fast shutdown (clients are cut off); the data stays for :meth:`start_again`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(20)
        self.proc = None

    def start_again(self, timeout: float | None = None) -> None:
        """Start the server on the same port and data after :meth:`shut_down`."""
        self.start(timeout)

    def stop(self) -> None:
        """Immediate shutdown (the data is thrown away anyway) and remove the work dir."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def dsn(self, database: str) -> str:
        """libpq connection string for ``database``."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:  # type: ignore[override]
        """SQLAlchemy URL (psycopg 3) for ``database``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, template: str | None = None, name: str | None = None) -> str:
        """A fresh database (empty, or a copy of ``template``); returns its SQLAlchemy URL."""
        self._counter += 1
        name = name or f"gs_test_{self._counter}"
        suffix = f" TEMPLATE {template}" if template else ""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{suffix}")
        return self.url(name)
