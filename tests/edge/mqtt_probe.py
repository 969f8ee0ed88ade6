"""A foreign MQTT subscriber for integration tests: records everything it receives."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from simulators.servers import wait_until


@dataclass(frozen=True)
class Received:
    """One message as the subscriber saw it."""

    topic: str
    payload: bytes
    retain: bool
    dup: bool

    @property
    def channel(self) -> wire.Channel:
        return wire.parse_topic(self.topic).channel

    def message(self) -> wire.Message:
        return wire.decode(self.channel, self.payload)


class Probe:
    """paho subscriber on its own thread; ``persistent`` keeps its session across broker restarts."""

    def __init__(self, url: str, topic_filter: str, client_id: str = "probe", persistent: bool = False) -> None:
        parts = urlsplit(url)
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent, protocol=mqtt.MQTTv311
        )
        self.client.max_inflight_messages_set(0)
        self.topic_filter = topic_filter
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=30)
        self.client.loop_start()
        wait_until(self._subscribed.is_set, 10, what="probe subscribed")

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        client.subscribe(self.topic_filter, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), bool(msg.dup)))

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def on(self, channel: wire.Channel) -> list[Received]:
        return [m for m in self.snapshot() if m.channel is channel]

    def seqs(self, include_dup: bool = True) -> list[int]:
        """Seqs of every sequenced message received, in arrival order."""
        out = []
        for m in self.snapshot():
            if m.channel in (wire.Channel.STATUS, wire.Channel.CMD) or m.channel is wire.Channel.SNAPSHOT:
                continue
            if m.dup and not include_dup:
                continue
            out.append(int(wire.load_json(m.payload)["seq"]))
        return out

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
