"""Wills, keepalive, persistent sessions, takeover, re-delivery and flow control on the running broker."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

import pytest

from hub.broker import ThreadedBroker
from hub.mqtt.packets import Connack, Connect, Pingresp, Puback, Publish, Suback, Subscribe, Will
from simulators.servers import wait_until
from tests.hub.broker.conftest import PahoClient, RawClient

pytestmark = pytest.mark.integration

MakePaho = Callable[..., PahoClient]
MakeRaw = Callable[[], RawClient]
WILL = Will("gs/v1/s/d1/status", b"offline", 1, True)


def connect_raw(make: MakeRaw, connect: Connect) -> tuple[RawClient, Connack]:
    client = make()
    client.send(connect)
    connack = client.recv()
    assert isinstance(connack, Connack)
    assert connack.return_code == 0
    return client, connack


def test_will_on_abrupt_close_is_published_and_retained(paho: MakePaho, raw: MakeRaw) -> None:
    watcher = paho("watcher")
    watcher.subscribe("gs/v1/+/+/status", 1)
    device, _ = connect_raw(raw, Connect("d1", will=WILL))
    device.close()
    wait_until(watcher.received, 5, what="will")
    assert watcher.received()[0].payload == b"offline"
    late = paho("late")
    late.subscribe("gs/v1/+/+/status", 1)
    wait_until(late.received, 5, what="retained will")
    assert (late.received()[0].payload, late.received()[0].retain) == (b"offline", True)


def test_will_on_keepalive_expiry(paho: MakePaho, raw: MakeRaw, broker: ThreadedBroker) -> None:
    watcher = paho("watcher")
    watcher.subscribe("gs/v1/+/+/status", 1)
    started = time.monotonic()
    device, _ = connect_raw(raw, Connect("d1", keepalive=1, will=WILL))
    # Silent client: the broker must give up after 1.5 x keepalive, not before.
    wait_until(watcher.received, 4, what="will after keepalive expiry")
    assert time.monotonic() - started >= 1.4
    assert device.closed_by_broker()
    assert broker.broker.stats.wills_published == 1


def test_pings_keep_a_client_alive(raw: MakeRaw, broker: ThreadedBroker) -> None:
    device, _ = connect_raw(raw, Connect("d1", keepalive=1, will=WILL))
    pings = 0
    for _ in range(4):  # 4 x 0.5 s > 1.5 s keepalive limit
        device.sock.settimeout(0.5)
        assert not device.closed_by_broker()
        device.sock.settimeout(5)
        device.send(b"\xc0\x00")
        assert device.recv() == Pingresp()
        pings += 1
    assert pings == 4
    assert broker.broker.stats.wills_published == 0


def test_no_will_after_clean_disconnect(paho: MakePaho, broker: ThreadedBroker) -> None:
    watcher = paho("watcher")
    watcher.subscribe("gs/#", 1)
    device = paho("d1", will={"topic": WILL.topic, "payload": WILL.payload, "qos": 1, "retain": True})
    device.disconnect()
    wait_until(lambda: "d1" not in broker.broker.sessions, 5, what="d1 gone")
    paho("pub").publish("gs/marker", b"m", 1)
    wait_until(watcher.received, 5, what="marker")
    assert [m.topic for m in watcher.received()] == ["gs/marker"]
    assert broker.broker.stats.wills_published == 0


def test_takeover_publishes_old_will_and_closes_old_connection(paho: MakePaho, raw: MakeRaw) -> None:
    watcher = paho("watcher")
    watcher.subscribe("gs/v1/+/+/status", 1)
    old, _ = connect_raw(raw, Connect("d1", will=WILL))
    new, _ = connect_raw(raw, Connect("d1"))
    wait_until(watcher.received, 5, what="will of the taken-over connection")
    assert old.closed_by_broker()
    new.send(b"\xc0\x00")
    assert new.recv() == Pingresp()


def test_persistent_session_queues_while_offline(broker: ThreadedBroker, paho: MakePaho) -> None:
    hub = PahoClient(broker.port, "hub", clean_session=False).connect()
    hub.subscribe("gs/v1/+/+/event", 1)
    hub.disconnect()
    pub = paho("pub")
    for index in range(5):
        pub.publish("gs/v1/s/d1/event", str(index), 1)
    pub.publish("gs/v1/s/d1/event", "q0", 0)  # QoS 0 is not queued for offline sessions
    back = PahoClient(broker.port, "hub", clean_session=False).connect()
    try:
        assert back.connect_flags == {"session_present": True}
        wait_until(lambda: len(back.received()) >= 5, 5, what="queued messages")
        assert [m.payload.decode() for m in back.received()] == ["0", "1", "2", "3", "4"]
    finally:
        back.disconnect()
    fresh = PahoClient(broker.port, "hub", clean_session=True).connect()
    assert fresh.connect_flags == {"session_present": False}
    fresh.disconnect()


def test_unacked_qos1_resent_with_dup_on_resume(raw: MakeRaw, paho: MakePaho) -> None:
    sub, _ = connect_raw(raw, Connect("hub", clean_session=False))
    sub.send(Subscribe(1, (("t", 1),)))
    assert sub.recv() == Suback(1, (1,))
    paho("pub").publish("t", b"payload", 1)
    first = sub.recv()
    assert isinstance(first, Publish)
    assert not first.dup
    sub.close()  # no PUBACK
    again, connack = connect_raw(raw, Connect("hub", clean_session=False))
    assert connack.session_present
    resent = again.recv()
    assert isinstance(resent, Publish)
    assert (resent.dup, resent.packet_id, resent.payload) == (True, first.packet_id, b"payload")
    again.send(Puback(resent.packet_id or 0))


def test_offline_queue_overflow_drops_oldest_with_warning(
    make_broker: Callable[..., ThreadedBroker], caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_broker(max_queued=10)
    hub = PahoClient(broker.port, "hub", clean_session=False).connect()
    hub.subscribe("t", 1)
    hub.disconnect()
    pub = PahoClient(broker.port, "pub").connect()
    with caplog.at_level(logging.WARNING, logger="hub.broker"):
        for index in range(25):
            pub.publish("t", str(index), 1)
        back = PahoClient(broker.port, "hub", clean_session=False).connect()
        wait_until(lambda: len(back.received()) >= 10, 5, what="the 10 newest messages")
        wait_until(lambda: "total 15" in caplog.text, 5, what="drop warning with the total")
    assert [m.payload.decode() for m in back.received()] == [str(i) for i in range(15, 25)]
    assert "dropped" in caplog.text
    back.disconnect()
    pub.disconnect()


def test_slow_subscriber_does_not_block_others(make_broker: Callable[..., ThreadedBroker]) -> None:
    broker = make_broker(write_high_water=256 * 1024)
    slow = RawClient(broker.port)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.send(Connect("slow"))
    slow.recv()
    slow.send(Subscribe(1, (("bulk/#", 0),)))
    slow.recv()  # never reads again
    fast = PahoClient(broker.port, "fast").connect()
    fast.subscribe("bulk/#", 1)  # QoS 1 waits in its bounded queue; QoS 0 to the slow one is dropped
    pub = PahoClient(broker.port, "pub").connect()
    chunk = b"z" * (64 * 1024)
    for index in range(400):  # 25 MB, far beyond the slow client's buffers
        pub.publish(f"bulk/{index}", chunk, 1)
    wait_until(lambda: len(fast.received()) >= 400, 10, what="fast subscriber got everything")
    session = broker.broker.sessions["slow"]
    wait_until(lambda: session.drops.qos0 > 0, 5, what="QoS 0 drops for the slow client")
    fast.disconnect()
    pub.disconnect()


def test_sixty_devices_with_birth_and_will_stay_connected(raw: MakeRaw, paho: MakePaho, broker: ThreadedBroker) -> None:
    devices = []
    for index in range(60):
        will = Will(f"gs/v1/s/d{index}/status", b'{"online":false}', 1, True)
        device, _ = connect_raw(raw, Connect(f"d{index}", keepalive=30, will=will))
        device.send(Publish(f"gs/v1/s/d{index}/status", b'{"online":true}', 1, True, packet_id=1))
        assert device.recv() == Puback(1)
        devices.append(device)
    hub = paho("hub")
    hub.subscribe("gs/v1/+/+/status", 1)
    wait_until(lambda: len(hub.received()) >= 60, 5, what="60 retained births")
    assert {m.payload for m in hub.received()} == {b'{"online":true}'}
    assert broker.broker.client_count == 61
    devices[7].close()
    wait_until(lambda: len(hub.received()) >= 61, 5, what="one LWT")
    assert hub.received()[-1].topic == "gs/v1/s/d7/status"
    assert broker.broker.client_count == 60
