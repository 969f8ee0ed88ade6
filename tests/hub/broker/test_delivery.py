"""Delivery through the running broker with real paho-mqtt clients and mosquitto's CLI tools."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hub.broker import ThreadedBroker
from hub.mqtt.packets import (
    CONNACK_IDENTIFIER_REJECTED,
    CONNACK_NOT_AUTHORIZED,
    SUBACK_FAILURE,
    Connack,
    Connect,
    Pingresp,
    Puback,
    Publish,
    Suback,
    Subscribe,
)
from simulators.servers import wait_until
from tests.hub.broker.conftest import PahoClient, RawClient
from tests.servers import require_binary

pytestmark = pytest.mark.integration

MakePaho = Callable[..., PahoClient]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_qos_delivery_in_order(paho: MakePaho, qos: int) -> None:
    sub = paho("sub")
    sub.subscribe("gs/v1/+/+/telemetry", qos)
    pub = paho("pub")
    for index in range(50):
        pub.publish("gs/v1/site/dev1/telemetry", f"m{index}", qos)
    wait_until(lambda: len(sub.received()) >= 50, 5, what="50 messages")
    got = sub.received()
    assert [m.payload.decode() for m in got] == [f"m{i}" for i in range(50)]
    assert {m.qos for m in got} == {qos}


def test_granted_qos_caps_delivery_qos(paho: MakePaho) -> None:
    sub = paho("sub")
    sub.subscribe("t", 0)
    pub = paho("pub")
    pub.publish("t", b"x", 2)
    wait_until(sub.received, 5, what="message")
    assert sub.received()[0].qos == 0


def test_retained_delivered_on_subscribe_and_deleted_by_empty_payload(paho: MakePaho) -> None:
    pub = paho("pub")
    pub.publish("gs/v1/s/d1/status", b"online", 1, retain=True)
    first = paho("first")
    first.subscribe("gs/v1/+/+/status", 1)
    wait_until(first.received, 5, what="retained status")
    message = first.received()[0]
    assert (message.payload, message.retain) == (b"online", True)
    pub.publish("gs/v1/s/d1/status", b"live", 1, retain=True)
    wait_until(lambda: len(first.received()) == 2, 5, what="live status")
    assert first.received()[1].retain is False  # established subscription: retain flag cleared
    pub.publish("gs/v1/s/d1/status", b"", 1, retain=True)
    second = paho("second")
    second.subscribe("gs/v1/#", 1)
    pub.publish("gs/v1/s/d1/marker", b"m", 1)
    wait_until(second.received, 5, what="marker")
    assert [m.topic for m in second.received()] == ["gs/v1/s/d1/marker"]


def test_shared_subscription_gives_each_message_to_exactly_one_member(paho: MakePaho) -> None:
    members = [paho(f"hub-{i}") for i in range(2)]
    for member in members:
        member.subscribe("$share/hub/gs/v1/+/+/event", 1)
    watcher = paho("watcher")
    watcher.subscribe("gs/v1/+/+/event", 1)
    pub = paho("pub")
    for index in range(40):
        pub.publish(f"gs/v1/s/d{index % 5}/event", str(index), 1)
    wait_until(lambda: sum(len(m.received()) for m in members) >= 40, 5, what="40 shared deliveries")
    wait_until(lambda: len(watcher.received()) >= 40, 5, what="40 plain deliveries")
    seen = [m.payload.decode() for member in members for m in member.received()]
    assert sorted(seen, key=int) == [str(i) for i in range(40)]
    assert [len(m.received()) for m in members] == [20, 20]


def test_two_megabyte_publish_is_delivered_intact(paho: MakePaho) -> None:
    payload = bytes(range(256)) * (2 * 1024 * 1024 // 256)
    sub = paho("sub")
    sub.subscribe("big", 1)
    paho("pub").publish("big", payload, 1)
    wait_until(sub.received, 10, what="2 MB message")
    assert sub.received()[0].payload == payload


def test_oversize_packet_disconnects_only_that_client(make_broker: Callable[..., ThreadedBroker]) -> None:
    broker = make_broker(max_packet_bytes=64 * 1024)
    good = PahoClient(broker.port, "good").connect()
    good.subscribe("t", 1)
    bad = RawClient(broker.port)
    bad.send(Connect("bad"))
    assert bad.recv() == Connack(0, False)
    bad.send(Publish("t", b"x" * (100 * 1024)))
    assert bad.closed_by_broker()
    PahoClient(broker.port, "pub").connect().publish("t", b"after", 1)
    wait_until(good.received, 5, what="message after the oversize one")
    assert [m.payload for m in good.received()] == [b"after"]
    assert broker.broker.stats.protocol_errors == 1
    good.disconnect()


@pytest.mark.parametrize(("client_id", "clean"), [("a+b", True), ("a#", True), ("a/b", True), ("", False)])
def test_bad_client_id_refused(raw: Callable[[], RawClient], client_id: str, clean: bool) -> None:
    client = raw()
    client.send(Connect(client_id, clean_session=clean))
    assert client.recv() == Connack(CONNACK_IDENTIFIER_REJECTED, False)
    assert client.closed_by_broker()


def test_empty_client_id_with_clean_session_gets_one(raw: Callable[[], RawClient], broker: ThreadedBroker) -> None:
    client = raw()
    client.send(Connect("", clean_session=True))
    assert client.recv() == Connack(0, False)
    assert [cid for cid in broker.broker.sessions if cid.startswith("auto-")]


@pytest.mark.parametrize(
    "packet",
    [Publish("a/+", b"x"), Publish("a/#", b"x"), Subscribe(1, (("a/#/b", 0),)), Subscribe(1, (("a\x00", 0),))],
)
def test_invalid_topics_disconnect(raw: Callable[[], RawClient], packet: Publish | Subscribe) -> None:
    client = raw()
    client.send(Connect("c"))
    client.recv()
    client.send(packet)
    assert client.closed_by_broker()


def test_auth_hooks(make_broker: Callable[..., ThreadedBroker]) -> None:
    def authorize(client_id: str, username: str | None, topic: str, is_publish: bool) -> bool:
        return not topic.startswith("secret") and not (is_publish and topic.startswith("ro/"))

    broker = make_broker(authenticate=lambda cid, user, password: user == "u" and password == b"p", authorize=authorize)
    refused = RawClient(broker.port)
    refused.send(Connect("c1", username="u", password=b"wrong"))
    assert refused.recv() == Connack(CONNACK_NOT_AUTHORIZED, False)
    assert refused.closed_by_broker()
    client = RawClient(broker.port)
    client.send(Connect("c2", username="u", password=b"p"))
    assert client.recv() == Connack(0, False)
    client.send(Subscribe(1, (("secret/#", 1), ("ro/#", 1))))
    assert client.recv() == Suback(1, (SUBACK_FAILURE, 1))
    client.send(Publish("ro/denied", b"no", 1, packet_id=2))  # acknowledged (3.1.1 has no refusal) but dropped
    assert client.recv() == Puback(2)
    client.send(Publish("ro/", b"", 0))
    client.send(Publish("other", b"", 0))
    client.send(b"\xc0\x00")
    assert client.recv() == Pingresp()
    assert broker.broker.stats.messages_in == 1  # only "other" was routed


def test_mosquitto_cli_interop(broker: ThreadedBroker, tmp_path: Path) -> None:
    sub_bin = require_binary("mosquitto_sub", "mosquitto-clients")
    pub_bin = require_binary("mosquitto_pub", "mosquitto-clients")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x01" * (2 * 1024 * 1024))
    port = str(broker.port)
    out = tmp_path / "out"
    with out.open("wb") as sink:
        sub = subprocess.Popen(
            [sub_bin, "-p", port, "-i", "cli-sub", "-t", "gs/v1/s/+/telemetry", "-q", "1", "-C", "2", "-N"], stdout=sink
        )
        try:
            wait_until(lambda: "cli-sub" in broker.broker.sessions, 5, what="mosquitto_sub connected")
            wait_until(lambda: broker.broker.sessions["cli-sub"].subscriptions, 5, what="mosquitto_sub subscribed")
            subprocess.run(
                [pub_bin, "-p", port, "-t", "gs/v1/s/d1/telemetry", "-q", "1", "-m", "{not json"], check=True
            )
            subprocess.run([pub_bin, "-p", port, "-t", "gs/v1/s/d2/telemetry", "-q", "2", "-f", str(big)], check=True)
            assert sub.wait(10) == 0
        finally:
            sub.kill()
    assert out.read_bytes() == b"{not json" + big.read_bytes()


def test_retained_birth_will_and_two_megabytes_from_one_device(paho: MakePaho) -> None:
    """The sequence amqtt hung on: retained birth + LWT + a 2 MB publish, then the device dies."""
    hub = paho("hub")
    hub.subscribe("$share/hub/gs/v1/+/+/+", 1)
    will = {"topic": "gs/v1/s/cam1/status", "payload": b'{"online":false}', "qos": 1, "retain": True}
    device = paho("cam1", will=will)
    device.publish("gs/v1/s/cam1/status", b'{"online":true}', 1, retain=True)
    big = b"\xff" * (2 * 1024 * 1024)
    device.publish("gs/v1/s/cam1/telemetry", big, 1)
    wait_until(lambda: len(hub.received()) >= 2, 10, what="birth and 2 MB")
    device.client.loop_stop()
    sock = device.client.socket()
    assert sock is not None
    sock.close()  # dies without DISCONNECT
    wait_until(lambda: len(hub.received()) >= 3, 5, what="LWT")
    assert [m.payload[:20] for m in hub.received()] == [b'{"online":true}', b"\xff" * 20, b'{"online":false}']
