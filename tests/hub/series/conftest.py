"""Fixtures for the series tests: real influxd and VictoriaMetrics, the fault proxy, and every backend."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.series.base import SeriesStore
from hub.series.settings import SeriesSettings, open_store
from simulators.servers import Influxd, VictoriaMetrics
from tests.hub.series.proxy import FaultProxy

BACKENDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("influxdb-v1", id="influxdb-v1", marks=pytest.mark.integration),
    pytest.param("influxdb-v2", id="influxdb-v2", marks=pytest.mark.integration),
]


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """One real influxd for the session; tests isolate themselves with their own database."""
    server = Influxd(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An influxd this test may stop and start (database ``gs`` created)."""
    server = Influxd(tmp_path / "influxd")
    server.start()
    server.create_db("gs")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """One real VictoriaMetrics for the session."""
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influx_db(influxd: Influxd) -> str:
    """A fresh database on the shared influxd."""
    name = "t_" + uuid.uuid4().hex[:12]
    influxd.create_db(name)
    return name


@pytest.fixture
def proxy(influxd: Influxd) -> Iterator[FaultProxy]:
    """A fault-injecting, v2->v1 path-rewriting proxy in front of the shared influxd."""
    server = FaultProxy(influxd.port).start()
    yield server
    server.stop()


def settings_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> SeriesSettings:
    """Settings for ``backend``; influx backends get a fresh database on the shared influxd."""
    if backend == "embedded":
        return SeriesSettings(backend="embedded", path=tmp_path / "series.sqlite3")
    db: str = request.getfixturevalue("influx_db")
    if backend == "influxdb-v1":
        server: Influxd = request.getfixturevalue("influxd")
        return SeriesSettings(backend="influxdb-v1", url=server.url, db=db, timeout_s=5)
    proxy_server: FaultProxy = request.getfixturevalue("proxy")
    return SeriesSettings(
        backend="influxdb-v2", url=proxy_server.url, token="test-token", org="gs", bucket=db, timeout_s=5
    )


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SeriesStore]:
    """Every backend behind the one SeriesStore seam, opened through the registry."""
    opened = open_store(settings_for(request.param, tmp_path, request), tmp_path)
    yield opened
    opened.close()


class SmallDisk:
    """A real, tiny filesystem (tmpfs with a size limit) that a test can fill to ENOSPC and free again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._filler = root / "filler"

    def fill(self, leave_bytes: int = 0) -> None:
        """Fill the disk with a filler file, then free about ``leave_bytes`` (whole 4 KiB pages)."""
        with self._filler.open("ab", buffering=0) as fh:
            chunk = b"\0" * 65536
            try:
                while True:
                    fh.write(chunk)
            except OSError:
                pass
        if leave_bytes:
            self.free(leave_bytes)

    def free(self, nbytes: int | None = None) -> None:
        """Give ``nbytes`` back (all of the filler when None)."""
        if nbytes is None:
            self._filler.unlink(missing_ok=True)
            return
        size = self._filler.stat().st_size
        os.truncate(self._filler, max(0, size - nbytes))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 1 MiB tmpfs mounted for the test (needs root, as the test command runs in CI)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a size-limited tmpfs needs root and mount(8)")
    root = tmp_path / "small-disk"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)], check=True)
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
