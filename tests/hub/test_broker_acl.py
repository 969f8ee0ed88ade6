"""Generated password_file / acl_file enforced by a real mosquitto: devices stay inside their own topics."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import sessionmaker

import tests.edge.fake_driver  # noqa: F401  (registers the test_counter driver)
from edge.agent import Agent
from edge.config import parse_config
from edge.wire import Channel, topic
from hub.db import make_engine
from hub.devices.credentials import MqttCredentialRow
from hub.devices.provision import CredentialStore, Issued, mosquitto_auth_conf, write_broker_files
from simulators.servers import Mosquitto, free_port, port_open, wait_until
from tests.edge.agent_helpers import agent_raw
from tests.servers import require_binary

pytestmark = pytest.mark.integration

SITE = "site-1"


@dataclass
class Peer:
    """A paho client that records its CONNACK and every message it receives."""

    client: mqtt.Client
    connack: Any = None
    received: list[tuple[str, bytes]] = field(default_factory=list)
    subacks: list[Any] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)

    def topics(self) -> list[str]:
        return [t for t, _ in self.received]


@dataclass
class Secured:
    """A mosquitto running the generated files, and the credentials in them."""

    server: Mosquitto
    store: CredentialStore
    broker_dir: Path
    a: Issued
    b: Issued
    hub: Issued
    peers: list[Peer] = field(default_factory=list)

    def connect(self, client_id: str, username: str | None = None, password: str | None = None) -> Peer:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        peer = Peer(client)
        if username is not None:
            client.username_pw_set(username, password)

        def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            peer.connack = reason
            peer.connected.set()

        def on_message(_c: mqtt.Client, _u: Any, m: mqtt.MQTTMessage) -> None:
            peer.received.append((m.topic, bytes(m.payload)))

        def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
            peer.subacks.append(codes)

        client.on_connect, client.on_message, client.on_subscribe = on_connect, on_message, on_subscribe
        client.reconnect_delay_set(60, 60)  # a refused client must not retry during the test
        client.connect("127.0.0.1", self.server.port, keepalive=30)
        client.loop_start()
        self.peers.append(peer)
        assert peer.connected.wait(5), f"no CONNACK for {client_id}"
        return peer

    def device(self, issued: Issued) -> Peer:
        peer = self.connect(issued.username, issued.username, issued.password)
        assert not peer.connack.is_failure, peer.connack
        return peer

    def subscribed(self, peer: Peer, topic_filter: str) -> None:
        before = len(peer.subacks)
        peer.client.subscribe(topic_filter, qos=1)
        wait_until(lambda: len(peer.subacks) > before, 5, what=f"SUBACK for {topic_filter}")


def _topic(device: str, channel: Channel) -> str:
    return topic(SITE, device, channel)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    MqttCredentialRow.__table__.create(engine)  # type: ignore[attr-defined]
    store = CredentialStore(sessionmaker(engine, expire_on_commit=False))
    a, b = store.provision("dev-a", SITE), store.provision("dev-b", SITE)
    hub = store.provision_hub("hub")
    files = write_broker_files(store, tmp_path / "broker")
    conf = mosquitto_auth_conf(files).replace("allow_anonymous false\n", "") + "log_type information\n"
    server = Mosquitto(tmp_path / "mosquitto", extra_conf=conf, anonymous=False, log_notice=True)
    server.start()
    env = Secured(server, store, tmp_path / "broker", a, b, hub)
    yield env
    for peer in env.peers:
        peer.client.disconnect()
        peer.client.loop_stop()
    server.stop()
    engine.dispose()


def _hub(env: Secured) -> Peer:
    hub = env.device(env.hub)
    env.subscribed(hub, "gs/v1/+/+/#")
    return hub


def _marker(env: Secured, device: Peer, hub: Peer, name: str) -> None:
    """Publish on the device's own telemetry topic and wait for the hub to get it (orders what came before)."""
    device.client.publish(_topic(name, Channel.TELEMETRY), b"marker", qos=1)
    wait_until(lambda: (_topic(name, Channel.TELEMETRY), b"marker") in hub.received, 5, what="marker at the hub")


def test_device_publishes_its_own_topics(secured: Secured) -> None:
    hub, a = _hub(secured), secured.device(secured.a)
    for channel in (Channel.STATUS, Channel.EVENT, Channel.GAP, Channel.CMD_ACK):
        a.client.publish(_topic("dev-a", channel), b"own", qos=1)
    a.client.publish(topic(SITE, "dev-a", Channel.SNAPSHOT, event_id="ev-1"), b"\xff\xd8jpeg", qos=1)
    wait_until(lambda: len(hub.received) == 5, 5, what="five own messages at the hub")


def _forge(env: Secured, name: str, client_id: str = "dev-a") -> None:
    """Publish as dev-a on ``name``; mosquitto 2.0 drops the message and disconnects the client."""
    peer = env.connect(client_id, "dev-a", env.a.password)
    assert not peer.connack.is_failure
    peer.client.publish(name, b"forged", qos=1)
    wait_until(lambda: not peer.client.is_connected(), 5, what=f"dev-a disconnected after publishing to {name}")
    peer.client.loop_stop()


def test_device_cannot_publish_as_another(secured: Secured) -> None:
    hub = _hub(secured)
    forged = [
        _topic("dev-b", Channel.TELEMETRY),
        _topic("dev-b", Channel.STATUS),
        topic("other-site", "dev-a", Channel.EVENT),  # its own id under a site it does not belong to
        _topic("dev-a", Channel.CMD),  # commands come from the hub only
        "gs/v1/site-1/dev-a",
        "$SYS/broker/x",
    ]
    for name in forged:
        _forge(secured, name)
    _marker(secured, secured.device(secured.a), hub, "dev-a")
    assert [t for t, p in hub.received if p == b"forged"] == []


def test_device_cannot_subscribe_to_everything(secured: Secured) -> None:
    a, b = secured.device(secured.a), secured.device(secured.b)
    hub = _hub(secured)
    for flt in ("#", "gs/#", "gs/v1/+/+/telemetry", _topic("dev-b", Channel.TELEMETRY)):
        secured.subscribed(a, flt)
    secured.subscribed(a, _topic("dev-a", Channel.CMD))
    b.client.publish(_topic("dev-b", Channel.TELEMETRY), b"b-data", qos=1)
    _marker(secured, b, hub, "dev-b")
    hub.client.publish(_topic("dev-a", Channel.CMD), b"for-a", qos=1)
    wait_until(lambda: a.received, 5, what="A's own command")
    # mosquitto 2.0 grants the SUBACK but checks read access per message: nothing but A's cmd arrives
    assert a.received == [(_topic("dev-a", Channel.CMD), b"for-a")]


def test_device_cannot_read_another_devices_commands(secured: Secured) -> None:
    a, b = secured.device(secured.a), secured.device(secured.b)
    hub = _hub(secured)
    secured.subscribed(a, _topic("dev-b", Channel.CMD))
    secured.subscribed(a, "gs/v1/site-1/+/cmd")
    secured.subscribed(a, _topic("dev-a", Channel.CMD))
    secured.subscribed(b, _topic("dev-b", Channel.CMD))
    hub.client.publish(_topic("dev-b", Channel.CMD), b"for-b", qos=1)
    hub.client.publish(_topic("dev-a", Channel.CMD), b"for-a", qos=1)
    wait_until(lambda: b.received and a.received, 5, what="each device's own command")
    assert b.received == [(_topic("dev-b", Channel.CMD), b"for-b")]
    assert a.received == [(_topic("dev-a", Channel.CMD), b"for-a")]


def test_anonymous_wrong_password_and_revoked_users_are_refused(secured: Secured) -> None:
    assert secured.connect("dev-a").connack.is_failure
    assert secured.connect("dev-a", "dev-a", "not-the-password").connack.is_failure
    assert secured.connect("dev-a", "dev-a", secured.b.password).connack.is_failure
    assert secured.connect("nobody", "nobody", "x").connack.is_failure


@pytest.mark.parametrize("client_id", ["dev+a", "dev#a", "site-1/dev-a", "dev-b"])
def test_client_id_is_bound_to_the_user(secured: Secured, client_id: str) -> None:
    """A wildcard or foreign client id never reaches the broker: anonymous is refused, a device becomes itself."""
    assert secured.connect(client_id).connack.is_failure
    b = secured.device(secured.b)
    hub = _hub(secured)
    _forge(secured, _topic("dev-b", Channel.TELEMETRY), client_id)  # accepted as dev-a, kicked on forging
    _marker(secured, secured.device(secured.a), hub, "dev-a")
    assert [t for t, p in hub.received if p == b"forged"] == []
    assert b.client.is_connected()  # dev-b's session was not taken over
    log = (secured.server.workdir / "mosquitto.log").read_text()
    assert f" as {client_id} (p2, c1, k30, u'dev-a')" not in log


def test_revoked_device_is_refused_on_reconnect(secured: Secured) -> None:
    hub = _hub(secured)
    b = secured.device(secured.b)
    secured.store.revoke("dev-b")
    write_broker_files(secured.store, secured.broker_dir)
    secured.server.reload()
    log = secured.server.workdir / "mosquitto.log"
    wait_until(lambda: "Reloading config" in log.read_text(), 5, what="mosquitto reload")
    b.client.disconnect()
    b.client.loop_stop()
    again = secured.connect("dev-b", "dev-b", secured.b.password)
    assert again.connack.is_failure
    a = secured.device(secured.a)  # everyone else still gets in
    _marker(secured, a, hub, "dev-a")
    # re-provisioning issues a new password; the old one stays dead
    fresh = secured.store.provision("dev-b", SITE)
    write_broker_files(secured.store, secured.broker_dir)
    secured.server.reload()
    wait_until(lambda: log.read_text().count("Reloading config") >= 2, 5, what="second reload")
    assert secured.connect("dev-b", "dev-b", secured.b.password).connack.is_failure
    assert not secured.connect("dev-b", "dev-b", fresh.password).connack.is_failure


# ------------------------------------------------------------------ TLS listener + the real agent


def _make_certs(workdir: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 (EC keys: fast)."""
    openssl = require_binary("openssl", "openssl")
    workdir.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=workdir, check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=gs-test-ca")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (workdir / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "1", "-extfile", "san.ext",
    )  # fmt: skip
    return {name: workdir / f"{name}" for name in ("ca.crt", "server.crt", "server.key")}


def test_agent_over_tls_with_its_provisioned_credential(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    MqttCredentialRow.__table__.create(engine)  # type: ignore[attr-defined]
    store = CredentialStore(sessionmaker(engine, expire_on_commit=False))
    device, hub_cred = store.provision("dev-1", "site-a"), store.provision_hub("hub")
    files = write_broker_files(store, tmp_path / "broker")
    certs = _make_certs(tmp_path / "certs")
    tls_port = free_port()
    conf = mosquitto_auth_conf(files).replace("allow_anonymous false\n", "") + "\n".join(
        [
            f"listener {tls_port} 127.0.0.1",
            f"cafile {certs['ca.crt']}",
            f"certfile {certs['server.crt']}",
            f"keyfile {certs['server.key']}",
            "tls_version tlsv1.2",
            "",
        ]
    )
    server = Mosquitto(tmp_path / "mosquitto", extra_conf=conf, anonymous=False, log_notice=True)
    server.start()
    wait_until(lambda: port_open(tls_port), 5, what="TLS listener")
    env = Secured(server, store, tmp_path / "broker", device, device, hub_cred)
    (tmp_path / "mqtt-password").write_text(device.password + "\n")
    mqtt_section = {
        "username": "dev-1",
        "password_file": str(tmp_path / "mqtt-password"),
        "tls": {"ca": str(certs["ca.crt"])},
    }
    agent = Agent(parse_config(agent_raw(f"mqtts://127.0.0.1:{tls_port}", tmp_path / "o.db", mqtt=mqtt_section)))
    try:
        hub = _hub(env)
        agent.start()
        own = topic("site-a", "dev-1", Channel.TELEMETRY)
        wait_until(lambda: own in hub.topics(), 15, what="agent telemetry over TLS at the hub")
        # plain MQTT on the TLS port gets no CONNACK: the listener speaks TLS only
        connect = b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x05dev-1"
        with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as sock:
            sock.sendall(b"\x10" + bytes([len(connect)]) + connect)
            try:
                reply = sock.recv(4)
            except (ConnectionResetError, TimeoutError):
                reply = b""
        assert not reply.startswith(b"\x20")
    finally:
        agent.stop()
        for peer in env.peers:
            peer.client.disconnect()
            peer.client.loop_stop()
        server.stop()
        engine.dispose()
