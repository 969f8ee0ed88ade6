"""Fixtures for the embedded broker: a threaded broker on a free port, paho and raw-socket clients."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.broker import ThreadedBroker
from hub.mqtt.codec import decode, decode_remaining_length, encode
from hub.mqtt.packets import Packet
from simulators.servers import wait_until


@pytest.fixture
def make_broker() -> Iterator[Callable[..., ThreadedBroker]]:
    """Start brokers with options on free ports; all are stopped after the test."""
    started: list[ThreadedBroker] = []

    def make(**options: Any) -> ThreadedBroker:
        broker = ThreadedBroker("127.0.0.1", 0, **options)
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


@pytest.fixture
def broker(make_broker: Callable[..., ThreadedBroker]) -> ThreadedBroker:
    """A broker with default options."""
    return make_broker()


class PahoClient:
    """A paho-mqtt 2.x client on its own network thread that records what it receives."""

    def __init__(self, port: int, client_id: str = "", *, clean_session: bool = True, **kwargs: Any) -> None:
        self.port = port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session, protocol=mqtt.MQTTv311
        )
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.connect_flags: dict[str, Any] = {}
        self.reason: Any = None
        self.subacks: list[list[Any]] = []
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _p: self.subacks.append(list(codes))
        self.keepalive = kwargs.pop("keepalive", 60)
        self.client.max_inflight_messages_set(1000)
        if "will" in kwargs:
            self.client.will_set(**kwargs.pop("will"))

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(message)

    def _on_connect(self, _c: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        self.connect_flags = {"session_present": flags.session_present}
        self.reason = reason

    def connect(self) -> PahoClient:
        """Connect and wait for CONNACK."""
        self.client.connect("127.0.0.1", self.port, keepalive=self.keepalive)
        self.client.loop_start()
        wait_until(lambda: self.reason is not None, 5, what="CONNACK")
        return self

    def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe and wait for SUBACK."""
        count = len(self.subacks)
        self.client.subscribe(topic, qos)
        wait_until(lambda: len(self.subacks) > count, 5, what=f"SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        """Publish and wait until the broker acknowledged it (QoS > 0) or it was written."""
        info = self.client.publish(topic, payload, qos, retain)
        info.wait_for_publish(10)

    def received(self, topic: str | None = None) -> list[mqtt.MQTTMessage]:
        """Messages so far (on ``topic`` only, when given)."""
        with self.lock:
            return [m for m in self.messages if topic is None or m.topic == topic]

    def disconnect(self) -> None:
        """Clean DISCONNECT and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def paho(broker: ThreadedBroker) -> Iterator[Callable[..., PahoClient]]:
    """Make connected paho clients on the default broker; all stopped after the test."""
    clients: list[PahoClient] = []

    def make(client_id: str = "", **kwargs: Any) -> PahoClient:
        client = PahoClient(broker.port, client_id, **kwargs).connect()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.disconnect()


class RawClient:
    """A blocking socket speaking MQTT through :mod:`hub.mqtt.codec` (for what paho won't do)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, packet: Packet | bytes) -> None:
        """Write one packet (or raw bytes)."""
        self.sock.sendall(packet if isinstance(packet, bytes) else encode(packet))

    def _exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed by broker")
            data += chunk
        return data

    def recv(self) -> Packet:
        """Read one packet (5 s timeout)."""
        head = self._exact(2)
        while head[-1] & 0x80:
            head += self._exact(1)
        length, _ = decode_remaining_length(head, 1)
        packet, _ = decode(head + self._exact(length))
        return packet

    def closed_by_broker(self) -> bool:
        """True once the broker has closed the connection (reads and discards anything pending)."""
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        """Drop the socket without DISCONNECT."""
        self.sock.close()


@pytest.fixture
def raw(broker: ThreadedBroker) -> Iterator[Callable[[], RawClient]]:
    """Make raw socket clients to the default broker."""
    clients: list[RawClient] = []

    def make() -> RawClient:
        client = RawClient(broker.port)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
