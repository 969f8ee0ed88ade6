"""Device credentials: hashes mosquitto reads, the store, the generated files, the CLI and the embedded-broker hook."""

from __future__ import annotations

import argparse
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session, sessionmaker

from edge.wire import Channel, topic
from hub.broker import ThreadedBroker
from hub.broker.acl import CredentialAuthorizer, covers
from hub.db import make_engine
from hub.devices.cli import configure
from hub.devices.credentials import MqttCredentialRow
from hub.devices.provision import (
    CredentialStore,
    ProvisionError,
    hash_password,
    render_acl_file,
    render_password_file,
    verify_password,
    write_broker_files,
)
from simulators.servers import wait_until
from tests.servers import require_binary


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    MqttCredentialRow.__table__.create(engine)  # type: ignore[attr-defined]
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def store(sessions: sessionmaker[Session]) -> CredentialStore:
    return CredentialStore(sessions, clock=lambda: 1_700_000_000.0)


# ------------------------------------------------------------------ hashes


def test_hash_has_the_mosquitto_format_and_verifies() -> None:
    encoded = hash_password("pw", salt=b"0123456789ab", iterations=101)
    empty, seven, rounds, salt, digest = encoded.split("$")
    assert (empty, seven, rounds, salt) == ("", "7", "101", "MDEyMzQ1Njc4OWFi")
    assert len(digest) == 88  # 64-byte SHA-512 in base64
    assert verify_password("pw", encoded) and not verify_password("pW", encoded)
    assert not verify_password("pw", "$6$x$y") and not verify_password("pw", "garbage")


@pytest.mark.integration
def test_verifies_hashes_written_by_mosquitto_passwd(tmp_path: Path) -> None:
    binary = require_binary("mosquitto_passwd", "mosquitto")
    pw_file = tmp_path / "pw"
    pw_file.write_text("")
    subprocess.run([binary, "-b", str(pw_file), "kiosk-07", "s3cret pass"], check=True)
    user, encoded = pw_file.read_text().strip().split(":", 1)
    assert user == "kiosk-07" and encoded.startswith("$7$")
    assert verify_password("s3cret pass", encoded) and not verify_password("s3cret", encoded)


# ------------------------------------------------------------------ store and files


def test_provision_shows_the_password_once_and_stores_only_a_hash(
    store: CredentialStore, sessions: sessionmaker[Session]
) -> None:
    issued = store.provision("kiosk-07", "site-1")
    assert len(issued.password) >= 32
    with sessions() as s:
        row = s.get(MqttCredentialRow, "kiosk-07")
        assert row is not None and issued.password not in row.password_hash
    assert store.authenticate("kiosk-07", issued.password) is not None
    assert store.authenticate("kiosk-07", issued.password + "x") is None
    with pytest.raises(ProvisionError) as err:
        store.provision("kiosk-07", "site-1")
    assert err.value.code == "exists"
    rotated = store.provision("kiosk-07", "site-1", rotate=True)
    assert store.authenticate("kiosk-07", issued.password) is None
    assert store.authenticate("kiosk-07", rotated.password) is not None


def test_bad_ids_are_refused(store: CredentialStore) -> None:
    for device_id in ("a+b", "a#", "a/b", "A", "a\x00", ""):
        with pytest.raises(ValueError):
            store.provision(device_id, "site-1")
    with pytest.raises(ValueError):
        store.provision("ok", "bad/site")


def test_revoke_and_list(store: CredentialStore) -> None:
    store.provision("cam-1", "site-1")
    store.provision_hub("gridsentinel-hub")
    store.revoke("cam-1")
    with pytest.raises(ProvisionError):
        store.revoke("cam-1")
    assert [c.username for c in store.list()] == ["gridsentinel-hub"]
    assert [(c.username, c.active) for c in store.list(include_revoked=True)] == [
        ("cam-1", False),
        ("gridsentinel-hub", True),
    ]


def test_files_list_active_users_with_their_own_topics(store: CredentialStore, tmp_path: Path) -> None:
    store.provision("cam-1", "site-1")
    store.provision("cam-2", "site-2")
    store.provision_hub("hub")
    store.revoke("cam-2")
    creds = store.list(include_revoked=True)
    pw = render_password_file(creds)
    assert [line.split(":")[0] for line in pw.splitlines()] == ["cam-1", "hub"]
    acl = render_acl_file(creds)
    assert "user cam-2" not in acl
    assert "topic write gs/v1/site-1/cam-1/telemetry" in acl
    assert "topic write gs/v1/site-1/cam-1/snapshot/+" in acl
    assert "topic read gs/v1/site-1/cam-1/cmd" in acl
    assert "topic readwrite gs/v1/+/+/#" in acl
    files = write_broker_files(store, tmp_path / "broker")
    assert files.users == 2 and files.password_file.read_text() == pw
    assert files.password_file.stat().st_mode & 0o777 == 0o640


# ------------------------------------------------------------------ CLI


def _cli(tmp_path: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args([*argv, "--data-dir", str(tmp_path / "data")])
    code: int = args.func(args)
    return code


def test_cli_provision_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broker = str(tmp_path / "broker")
    assert _cli(tmp_path, "provision", "kiosk-07", "--site", "site-1", "--broker-dir", broker) == 0
    out = capsys.readouterr().out
    password = next(line.split(" = ")[1] for line in out.splitlines() if line.startswith("password = "))
    assert password not in (tmp_path / "broker" / "password_file").read_text()
    assert _cli(tmp_path, "provision", "kiosk-07", "--site", "site-1") == 1
    assert "already has an active credential" in capsys.readouterr().err
    assert _cli(tmp_path, "list") == 0
    assert capsys.readouterr().out == "kiosk-07\tdevice\tsite-1\tactive\n"
    assert _cli(tmp_path, "revoke", "kiosk-07", "--broker-dir", broker) == 0
    assert (tmp_path / "broker" / "password_file").read_text() == ""
    assert _cli(tmp_path, "revoke", "kiosk-07") == 1
    assert _cli(tmp_path, "provision", "bad/id", "--site", "site-1") == 2


# ------------------------------------------------------------------ embedded broker hook


@pytest.mark.parametrize(
    ("rule", "flt", "ok"),
    [
        ("gs/v1/+/+/#", "gs/v1/+/+/status", True),
        ("gs/v1/+/+/#", "gs/v1/s/d/snapshot/+", True),
        ("gs/v1/+/+/#", "gs/#", False),
        ("gs/v1/+/+/#", "#", False),
        ("gs/v1/s/d/cmd", "gs/v1/s/d/cmd", True),
        ("gs/v1/s/d/cmd", "gs/v1/s/+/cmd", False),
        ("gs/v1/s/d/cmd", "gs/v1/s/d/#", False),
        ("gs/v1/s/d/cmd", "gs/v1/s/d/cmd/ack", False),
    ],
)
def test_covers(rule: str, flt: str, ok: bool) -> None:
    assert covers(rule, flt) is ok


class _Client:
    def __init__(self, port: int, client_id: str, username: str | None, password: str | None) -> None:
        self.connack: Any = None
        self.subacks: list[Any] = []
        self.received: list[tuple[str, bytes]] = []
        done = threading.Event()
        self.client = c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        if username is not None:
            c.username_pw_set(username, password)

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            self.connack = reason
            done.set()

        c.on_connect = on_connect
        c.on_subscribe = lambda _c, _u, _m, codes, _p: self.subacks.append(codes)
        c.on_message = lambda _c, _u, m: self.received.append((m.topic, bytes(m.payload)))
        c.reconnect_delay_set(60, 60)
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert done.wait(5), f"no CONNACK for {client_id}"

    @property
    def refused(self) -> bool:
        return bool(self.connack.is_failure)

    def subscribe(self, flt: str) -> Any:
        n = len(self.subacks)
        self.client.subscribe(flt, qos=1)
        wait_until(lambda: len(self.subacks) > n, 5, what=f"SUBACK {flt}")
        return self.subacks[-1][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_embedded_broker_enforces_the_same_rules(store: CredentialStore) -> None:
    a, b, hub_cred = store.provision("dev-a", "s1"), store.provision("dev-b", "s1"), store.provision_hub("hub")
    auth = CredentialAuthorizer(store.get)
    broker = ThreadedBroker("127.0.0.1", 0, authenticate=auth.authenticate, authorize=auth.authorize)
    broker.start()
    clients: list[_Client] = []

    def connect(client_id: str, username: str | None = None, password: str | None = None) -> _Client:
        client = _Client(broker.port, client_id, username, password)
        clients.append(client)
        return client

    try:
        hub = connect("hub", "hub", hub_cred.password)
        assert not hub.subscribe("gs/v1/+/+/#").is_failure
        dev_a = connect("dev-a", "dev-a", a.password)
        assert dev_a.subscribe("#").is_failure
        assert dev_a.subscribe(topic("s1", "dev-b", Channel.CMD)).is_failure
        assert not dev_a.subscribe(topic("s1", "dev-a", Channel.CMD)).is_failure
        dev_a.client.publish(topic("s1", "dev-b", Channel.TELEMETRY), b"forged", qos=1)
        dev_a.client.publish(topic("s1", "dev-a", Channel.TELEMETRY), b"own", qos=1)
        hub.client.publish(topic("s1", "dev-b", Channel.CMD), b"for-b", qos=1)
        hub.client.publish(topic("s1", "dev-a", Channel.CMD), b"for-a", qos=1)
        own = (topic("s1", "dev-a", Channel.TELEMETRY), b"own")  # published after the forged one, so it orders it
        wait_until(lambda: own in hub.received and dev_a.received, 5, what="own messages")
        assert [m for m in hub.received if m[0].endswith("/telemetry")] == [
            (topic("s1", "dev-a", Channel.TELEMETRY), b"own")
        ]
        assert dev_a.received == [(topic("s1", "dev-a", Channel.CMD), b"for-a")]
        for client_id in ("dev+a", "dev#a", "s1/dev-a", "dev-b"):  # wildcard ids, or another device's id
            assert connect(client_id, "dev-a", a.password).refused
        assert connect("dev-b").refused and connect("dev-b", "dev-b", a.password).refused
        dev_b = connect("dev-b", "dev-b", b.password)
        assert not dev_b.refused
        dev_b.close()
        store.revoke("dev-b")
        assert connect("dev-b", "dev-b", b.password).refused
    finally:
        for client in clients:
            client.close()
        broker.stop()
