"""Protocol corners driven byte by byte through raw sockets: fragmentation, versions, QoS 2 duplicates."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import pytest

from hub.broker import ThreadedBroker
from hub.mqtt.codec import encode
from hub.mqtt.packets import (
    CONNACK_BAD_PROTOCOL,
    Connack,
    Connect,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
)
from simulators.servers import wait_until
from tests.hub.broker.conftest import PahoClient, RawClient

pytestmark = pytest.mark.integration

MakeRaw = Callable[[], RawClient]
MakePaho = Callable[..., PahoClient]


def connected(make: MakeRaw, client_id: str, **kwargs: object) -> RawClient:
    client = make()
    client.send(Connect(client_id, **kwargs))  # type: ignore[arg-type]
    assert client.recv() == Connack(0, False)
    return client


def test_packets_split_into_single_bytes_are_reassembled(raw: MakeRaw, paho: MakePaho) -> None:
    sub = paho("sub")
    sub.subscribe("frag/#", 1)
    client = raw()
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = encode(Connect("frag")) + encode(Publish("frag/a", b"x" * 300, 1, packet_id=7)) + b"\xc0\x00"
    for byte in stream:
        client.send(bytes((byte,)))
    assert client.recv() == Connack(0, False)
    assert client.recv() == Puback(7)
    assert client.recv() == Pingresp()
    wait_until(sub.received, 5, what="fragmented publish")
    assert sub.received()[0].payload == b"x" * 300


def test_many_packets_in_one_segment(raw: MakeRaw, paho: MakePaho) -> None:
    sub = paho("sub")
    sub.subscribe("burst", 0)
    client = connected(raw, "burst")
    client.send(b"".join(encode(Publish("burst", str(i).encode())) for i in range(200)))
    wait_until(lambda: len(sub.received()) == 200, 5, what="200 messages from one write")
    assert [int(m.payload) for m in sub.received()] == list(range(200))


def test_mqtt_31_is_accepted_and_other_levels_refused(raw: MakeRaw) -> None:
    connected(raw, "old", protocol_name="MQIsdp", protocol_level=3)
    newer = raw()
    newer.send(Connect("new", protocol_level=5))
    assert newer.recv() == Connack(CONNACK_BAD_PROTOCOL, False)
    assert newer.closed_by_broker()


def test_first_packet_must_be_connect(raw: MakeRaw) -> None:
    client = raw()
    client.send(b"\xc0\x00")
    assert client.closed_by_broker()


def test_second_connect_is_a_protocol_error(raw: MakeRaw) -> None:
    client = connected(raw, "twice")
    client.send(Connect("twice"))
    assert client.closed_by_broker()


def test_qos2_duplicate_is_delivered_once(raw: MakeRaw, paho: MakePaho) -> None:
    sub = paho("sub")
    sub.subscribe("q2", 2)
    client = connected(raw, "pub2")
    client.send(Publish("q2", b"once", 2, packet_id=5))
    assert client.recv() == Pubrec(5)
    client.send(Publish("q2", b"once", 2, dup=True, packet_id=5))  # PUBREC lost, client retries
    assert client.recv() == Pubrec(5)
    client.send(Pubrel(5))
    assert client.recv() == Pubcomp(5)
    client.send(Publish("q2", b"next", 2, packet_id=5))  # id reusable after PUBCOMP
    assert client.recv() == Pubrec(5)
    wait_until(lambda: len(sub.received()) == 2, 5, what="two distinct QoS 2 messages")
    assert [m.payload for m in sub.received()] == [b"once", b"next"]


def test_qos2_to_subscriber_full_handshake(raw: MakeRaw, paho: MakePaho) -> None:
    sub = connected(raw, "sub2")
    sub.send(Subscribe(1, (("q2", 2),)))
    assert sub.recv() == Suback(1, (2,))
    paho("pub").publish("q2", b"x", 2)
    publish = sub.recv()
    assert isinstance(publish, Publish)
    assert publish.qos == 2
    sub.send(Pubrec(publish.packet_id or 0))
    assert sub.recv() == Pubrel(publish.packet_id or 0)
    sub.send(Pubcomp(publish.packet_id or 0))
    sub.send(b"\xc0\x00")
    assert sub.recv() == Pingresp()


def test_queue_bytes_bound_drops_oldest(
    make_broker: Callable[..., ThreadedBroker], caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_broker(max_queued_bytes=1024 * 1024)
    hub = PahoClient(broker.port, "hub", clean_session=False).connect()
    hub.subscribe("big", 1)
    hub.disconnect()
    pub = PahoClient(broker.port, "pub").connect()
    with caplog.at_level(logging.WARNING, logger="hub.broker"):
        for index in range(6):
            pub.publish("big", bytes((index,)) * (300 * 1024), 1)
        back = PahoClient(broker.port, "hub", clean_session=False).connect()
        wait_until(lambda: len(back.received()) >= 3, 5, what="the newest 3 messages")
        wait_until(lambda: "total 3" in caplog.text, 5, what="drop warning")
    assert [m.payload[0] for m in back.received()] == [3, 4, 5]
    back.disconnect()
    pub.disconnect()
