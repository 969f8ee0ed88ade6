"""For the hub fault tests (kill -9, full disk, state DB outage): `gridsentinel hub run` as a real process
writing to influxd, and the load generator on a thread while a test breaks things."""

from __future__ import annotations

import threading
from pathlib import Path

from simulators.loadgen import LoadResult, LoadSpec, run_load
from simulators.servers import HubProcess
from tests.hub.conftest import ADMIN_HEADERS, ADMIN_TOKEN


def cli_hub(work: Path, mqtt_url: str, influx_url: str, db: str, client_id: str, *extra: str) -> HubProcess:
    """``gridsentinel hub run`` on ``work/hub`` (log ``work/hub.log``) writing to influxd ``db``, with the tests'
    admin token; it is started once ``/healthz`` says healthy (broker, store, state DB), and its ``client`` is the
    admin's."""
    return HubProcess(
        work / "hub", mqtt_url, influx=(influx_url, db), scenario=False, client_id=client_id, extra=extra,
        env={"GRIDSENTINEL_ADMIN_TOKEN": ADMIN_TOKEN}, headers=ADMIN_HEADERS, log=work / "hub.log", until="ok",
    )  # fmt: skip


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
