"""The shared mosquitto fixture really brokers messages."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.servers import Mosquitto, wait_until


def test_mosquitto_fixture_delivers_a_qos1_message(mosquitto: Mosquitto) -> None:
    got: list[bytes] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="smoke-sub")
    sub.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("gs/#", qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="smoke-pub")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    wait_until(lambda: sub.is_connected() and pub.is_connected(), what="clients connected")
    pub.publish("gs/v1/s/d/telemetry", b"hello", qos=1).wait_for_publish(5)
    wait_until(lambda: got == [b"hello"], what="message delivered")
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
