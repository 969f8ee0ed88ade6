"""A foreign MQTT client acting as a device, built only with :mod:`edge.wire` (test helper)."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.wire import Channel, DeviceKind, DeviceState, Status, Telemetry

GRID = "110101001001001"


def now_ms() -> int:
    """Wall clock in ms."""
    return int(time.time() * 1000)


class FakeDevice:
    """Connects with an LWT, publishes birth and sequenced telemetry, records commands it receives."""

    def __init__(self, port: int, device_id: str = "kiosk-1", site: str = "site-a", epoch: int = 1) -> None:
        self.port = port
        self.device_id = device_id
        self.site = site
        self.epoch = epoch
        self.commands: list[wire.Command] = []
        self.connected = threading.Event()
        self.client: mqtt.Client | None = None
        self._last_ts = 0

    def topic(self, channel: Channel) -> str:
        """This device's topic for ``channel``."""
        return wire.topic(self.site, self.device_id, channel)

    def status(
        self, state: DeviceState, epoch: int | None = None, interval_s: float = 5.0, ts: int | None = None
    ) -> bytes:
        """An encoded status message (``ts`` defaults to now)."""
        return wire.encode(
            Status(
                state=state,
                epoch=self.epoch if epoch is None else epoch,
                ts=now_ms() if ts is None else ts,
                kind=DeviceKind.KIOSK,
                grid=GRID,
                interval_s=interval_s,
                labels={"street": "main"},
            )
        )

    def connect(self, keepalive: int = 60, interval_s: float = 5.0, birth: bool = True) -> None:
        """Connect with the offline LWT registered (retained, QoS 1), then publish the birth."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.device_id, protocol=mqtt.MQTTv311)
        client.will_set(self.topic(Channel.STATUS), self.status(DeviceState.OFFLINE), qos=1, retain=True)

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            c.subscribe(self.topic(Channel.CMD), qos=1)
            self.connected.set()

        def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
            cmd = wire.decode(Channel.CMD, bytes(msg.payload))
            assert isinstance(cmd, wire.Command)
            self.commands.append(cmd)

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect("127.0.0.1", self.port, keepalive=keepalive)
        client.loop_start()
        self.client = client
        if not self.connected.wait(10):
            raise RuntimeError("fake device did not connect")
        if birth:
            self.publish_raw(self.topic(Channel.STATUS), self.status(DeviceState.ONLINE, interval_s=interval_s), True)

    def publish_raw(self, name: str, payload: bytes, retain: bool = False) -> None:
        """Publish bytes at QoS 1 and wait for the PUBACK."""
        assert self.client is not None
        info = self.client.publish(name, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def telemetry(self, seq: int, **metrics: float) -> None:
        """Publish one telemetry point with ``seq``."""
        # Distinct timestamps: the series store keeps one point per (series, ts).
        ts = max(now_ms(), self._last_ts + 1)
        self._last_ts = ts
        msg = Telemetry(seq=seq, ts=ts, points=(wire.Point(ts, metrics),))
        self.publish_raw(self.topic(Channel.TELEMETRY), wire.encode(msg))

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT (like a kill -9 or a cut cable)."""
        assert self.client is not None
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()
        self.client = None

    def close(self) -> None:
        """Disconnect cleanly (no LWT)."""
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None
