"""The hub behind an authenticating broker: its own login, and only provisioned devices get in.

- embedded broker with ``broker_auth``: a provisioned device (the real edge agent with its
  issued password) is ingested; a client without credentials is refused at CONNECT;
- a real mosquitto running the generated password_file/acl_file with anonymous access off:
  the hub logs in with its own credential (``mqtt_username`` + ``mqtt_password_file``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from edge.config import parse_config
from hub.config import HubSettings
from hub.db import make_engine, session_factory, sqlite_url
from hub.devices.provision import CredentialStore, mosquitto_auth_conf, write_broker_files
from hub.schema import init_schema
from hub.service import Hub
from simulators.servers import Mosquitto, wait_until
from tests.hub.conftest import ADMIN_TOKEN, api

pytestmark = pytest.mark.integration

SITE = "site-1"


def _agent(tmp_path: Path, url: str, device_id: str, password: str) -> Agent:
    config = parse_config(
        {
            "device": {"id": device_id, "site": SITE, "kind": "sensor", "grid": "330106001001001"},
            "mqtt": {"url": url, "username": device_id, "password": password},
            "outbox": {"backend": "memory"},
            "drivers": [{"type": "sim_sensor", "profile": "smoke", "seed": 3, "interval_s": 0.3}],
        }
    )
    return Agent(config)


def _online_with_reading(hub: Hub, device_id: str) -> bool:
    with api(hub) as client:
        resp = client.get(f"/api/v1/devices/{device_id}")
    return resp.status_code == 200 and resp.json()["state"] == "online" and bool(resp.json()["latest"])


def _connack(port: int, client_id: str, username: str | None = None, password: str | None = None) -> Any:
    done = threading.Event()
    result: list[Any] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    if username is not None:
        client.username_pw_set(username, password)

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result.append(reason)
        done.set()

    client.on_connect = on_connect
    client.reconnect_delay_set(60, 60)
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        assert done.wait(5), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0]


def test_embedded_broker_admits_only_provisioned_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDSENTINEL_ADMIN_TOKEN", ADMIN_TOKEN)
    hub = Hub(
        HubSettings(broker_port=0, http_port=0, data_dir=tmp_path / "hub", broker_auth=True, client_id="hub-1"),
        plugins=(),
    )
    hub.start()
    agent: Agent | None = None
    try:
        assert hub.ctx is not None and hub.ingest is not None
        wait_until(lambda: hub.ingest is not None and hub.ingest.connected, what="hub logged in to its own broker")
        issued = CredentialStore(hub.ctx.sessions).provision("dev-a", SITE)
        url = f"mqtt://127.0.0.1:{hub.mqtt_port}"
        agent = _agent(tmp_path, url, "dev-a", issued.password)
        agent.start()
        wait_until(lambda: _online_with_reading(hub, "dev-a"), timeout=20, what="provisioned device ingested")
        assert _connack(hub.mqtt_port, "dev-x").is_failure  # no credentials
        assert _connack(hub.mqtt_port, "dev-a", "dev-a", "wrong-password").is_failure
        assert _connack(hub.mqtt_port, "dev-b", "dev-a", issued.password).is_failure  # id must equal user
        with api(hub) as client:
            assert [d["id"] for d in client.get("/api/v1/devices").json()] == ["dev-a"]
    finally:
        if agent is not None:
            agent.stop()
        hub.stop()


def test_hub_logs_in_to_a_mosquitto_that_refuses_anonymous_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDSENTINEL_ADMIN_TOKEN", ADMIN_TOKEN)

    data = tmp_path / "hub"
    data.mkdir()
    engine = make_engine(sqlite_url(data))
    init_schema(engine)
    store = CredentialStore(session_factory(engine))
    device, hub_cred = store.provision("dev-a", SITE), store.provision_hub("hub-1")
    files = write_broker_files(store, tmp_path / "broker")
    engine.dispose()
    conf = mosquitto_auth_conf(files).replace("allow_anonymous false\n", "")
    server = Mosquitto(tmp_path / "mosquitto", extra_conf=conf, anonymous=False, log_notice=True)
    server.start()
    password_file = tmp_path / "hub-password"
    password_file.write_text(hub_cred.password + "\n")
    hub = Hub(
        HubSettings(
            mqtt_url=server.url,
            mqtt_username="hub-1",
            mqtt_password_file=password_file,
            client_id="hub-1",
            http_port=0,
            data_dir=data,
        ),
        plugins=(),
    )
    agent: Agent | None = None
    try:
        assert _connack(server.port, "anon").is_failure  # the broker really refuses anonymous clients
        hub.start()
        agent = _agent(tmp_path, server.url, "dev-a", device.password)
        agent.start()
        wait_until(lambda: _online_with_reading(hub, "dev-a"), timeout=20, what="device ingested through mosquitto")
    finally:
        if agent is not None:
            agent.stop()
        hub.stop()
        server.stop()
