"""FastMqttClient: coalesced writes, buffered reads and the cheap PUBACK keep paho's guarantees."""

from __future__ import annotations

import select
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.mqttio import FastMqttClient
from simulators.servers import Mosquitto, wait_until

N = 5000


class _TrickleSocket:
    """A socket that takes at most ``limit`` bytes per send (a full kernel buffer, in miniature)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.sends = 0

    def send(self, data: bytes) -> int:
        self.sends += 1
        taken = bytes(data[: self.limit])
        self.data += taken
        return len(taken)

    def recv(self, _n: int) -> bytes:
        raise BlockingIOError

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def setblocking(self, _flag: bool) -> None:
        pass


def test_partial_sends_write_every_queued_packet_once_in_order() -> None:
    client = FastMqttClient(CallbackAPIVersion.VERSION2, client_id="trickle", protocol=mqtt.MQTTv311)
    client.defer_writes = True
    client.max_inflight_messages_set(0)
    sock = _TrickleSocket(limit=37)
    client._sock = sock  # type: ignore[assignment]  # connected, as far as paho's write path is concerned
    client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED  # type: ignore[attr-defined]
    expected = bytearray()
    packets = 50
    for i in range(packets):
        client.publish(f"t/{i}", f"payload-{i}".encode(), qos=1)
    assert len(client._out_packet) == packets
    for pkt in client._out_packet:
        expected += pkt["packet"]
    assert sock.sends == 0  # deferred: nothing written by publish()
    while client.want_write():
        assert client.loop_write() == mqtt.MQTT_ERR_SUCCESS
    assert bytes(sock.data) == bytes(expected)
    assert len(client._out_packet) == 0
    # Coalesced: a send carries several packets; a packet cut by a full socket is finished on its own.
    assert sock.sends < packets
    assert sock.sends <= 2 * -(-len(expected) // 37)


def _received(server: Mosquitto) -> tuple[mqtt.Client, list[bytes], threading.Event]:
    got: list[bytes] = []
    ready = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sink", protocol=mqtt.MQTTv311)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
        c.subscribe("fast/#", qos=1)

    def on_subscribe(*_a: Any) -> None:
        ready.set()

    def on_message(_c: mqtt.Client, _u: Any, m: mqtt.MQTTMessage) -> None:
        got.append(bytes(m.payload))

    sub.on_connect, sub.on_subscribe, sub.on_message = on_connect, on_subscribe, on_message
    sub.connect("127.0.0.1", server.port)
    sub.loop_start()
    assert ready.wait(5)
    return sub, got, ready


@pytest.mark.integration
def test_deferred_publishes_all_arrive_once_in_order_and_are_all_acked(mosquitto: Mosquitto, tmp_path: Path) -> None:
    sub, got, _ = _received(mosquitto)
    acked: list[int] = []
    pub = FastMqttClient(CallbackAPIVersion.VERSION2, client_id="fast-pub", protocol=mqtt.MQTTv311)
    pub.defer_writes = True
    pub.max_inflight_messages_set(0)
    pub.on_publish = lambda _c, _u, mid, _rc, _p: acked.append(mid)
    pub.connect("127.0.0.1", mosquitto.port)
    mids = [pub.publish("fast/x", str(i).encode(), qos=1).mid for i in range(N)]
    sock = pub.socket()
    assert sock is not None
    try:
        while len(acked) < N:
            if pub.want_write():
                assert pub.loop_write() == mqtt.MQTT_ERR_SUCCESS
            readable, _, _ = select.select([sock], [], [], 1.0)
            if readable:
                assert pub.loop_read() == mqtt.MQTT_ERR_SUCCESS
                while pub.buffered():
                    assert pub.loop_read() == mqtt.MQTT_ERR_SUCCESS
            assert pub.loop_misc() == mqtt.MQTT_ERR_SUCCESS
        assert sorted(acked) == sorted(mids)
        wait_until(lambda: len(got) >= N, timeout=10, what="all messages at the subscriber")
        assert got == [str(i).encode() for i in range(N)]
    finally:
        pub.disconnect()
        sub.disconnect()
        sub.loop_stop()
