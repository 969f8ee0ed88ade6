"""Hub fixtures: a running hub against a real mosquitto, and an HTTP client for its API."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from hub.cluster.bridge import NatsBridge
from hub.config import HubSettings
from hub.db import make_engine, session_factory, sqlite_url
from hub.schema import init_schema
from hub.service import Hub
from simulators.servers import Mosquitto, Postgres
from simulators.servers.nats import solo_nats

HubFactory = Callable[..., Hub]
#: The administrator token of test hubs (``GRIDSENTINEL_ADMIN_TOKEN``); :func:`api` sends it.
ADMIN_TOKEN = "gst_test-admin-token-0123456789abcdefghijklmnop"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def make_hub(tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubFactory]:
    """Start hubs on the test broker (HTTP on a free port, admin token :data:`ADMIN_TOKEN`, no plug-ins unless
    ``plugins=`` names them); stopped after the test."""
    monkeypatch.setenv("GRIDSENTINEL_ADMIN_TOKEN", ADMIN_TOKEN)
    hubs: list[Hub] = []

    def factory(**overrides: Any) -> Hub:
        values: dict[str, Any] = {
            "mqtt_url": mosquitto.url,
            "http_port": 0,
            "data_dir": tmp_path / f"hub{len(hubs)}",
            "client_id": f"test-hub-{len(hubs)}",
        }
        plugins = overrides.pop("plugins", ())
        values.update(overrides)
        hub = Hub(HubSettings(**values), plugins=plugins)
        hubs.append(hub)
        hub.start()
        return hub

    yield factory
    for hub in hubs:
        hub.stop()


def api(hub: Hub, token: str | None = ADMIN_TOKEN) -> httpx.Client:
    """An HTTP client on the hub's API, signed in with ``token`` (default: the test administrator's)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"http://127.0.0.1:{hub.http_port}", timeout=5, headers=headers)


#: The hub core's tables, emptied between PostgreSQL tests (one database for the session is much faster).
CORE_TABLES = ("devices", "data_loss", "dead_letters", "open_gaps", "device_commands")


@pytest.fixture(scope="session")
def hub_pg_engine() -> Iterator[Engine]:
    """One PostgreSQL cluster and database with the full schema for the hub core's state-DB tests."""
    server = Postgres()
    server.start()
    engine = make_engine(server.create_database(name="gs_hub_core"))
    init_schema(engine)
    yield engine
    engine.dispose()
    server.stop()


@pytest.fixture
def own_pg() -> Iterator[Postgres]:
    """A PostgreSQL cluster of the test's own: the test may shut it down and start it again."""
    server = Postgres()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """One nats-server with JetStream on free loopback ports."""
    with solo_nats(tmp_path) as node:
        yield node.client_url


@pytest.fixture
def nats_bridges(nats_url: str) -> Iterator[Callable[[str], NatsBridge]]:
    """Connected :class:`NatsBridge` es to the test's nats-server, one per name asked for (as replicas have)."""
    made: list[NatsBridge] = []

    def make(name: str) -> NatsBridge:
        bridge = NatsBridge((nats_url,), name)
        made.append(bridge)
        bridge.start()
        bridge.call(bridge.connect(), 10)
        return bridge

    yield make
    for bridge in made:
        bridge.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def state_sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on an empty state DB with the schema, on each backend (SQLite file, real PostgreSQL)."""
    if request.param == "sqlite":
        engine = make_engine(sqlite_url(tmp_path))
        init_schema(engine)
        yield session_factory(engine)
        engine.dispose()
        return
    pg: Engine = request.getfixturevalue("hub_pg_engine")
    with pg.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(CORE_TABLES)} RESTART IDENTITY"))
    yield session_factory(pg)


class FirstStreamEvent:
    """Listens to the hub's SSE stream on a thread and keeps the first event's data (then stops)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.received: list[dict[str, Any]] = []
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._listen, args=(url, headers), daemon=True)

    def _listen(self, url: str, headers: dict[str, str]) -> None:
        with httpx.stream("GET", url, timeout=10, headers=headers) as resp:
            self._opened.set()
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    self.received.append(json.loads(line[6:]))
                    return

    def start(self) -> FirstStreamEvent:
        """Connect; return once the response has started."""
        self._thread.start()
        assert self._opened.wait(5), "the stream did not open"
        return self

    def wait(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The first event's data, or None when none came within ``timeout``."""
        self._thread.join(timeout)
        return self.received[0] if self.received else None
