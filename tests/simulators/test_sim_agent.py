"""Simulated drivers inside the REAL edge agent, against a real mosquitto: readings flow, a trigger raises an event."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.agent import Agent
from edge.config import parse_config
from simulators.community import agent_config, generate_community
from simulators.drivers import find_sim
from simulators.servers import Mosquitto, wait_until


@pytest.mark.integration
def test_community_sensors_and_kiosk_through_the_real_agent(mosquitto: Mosquitto) -> None:
    community = generate_community(2, seed=4, mix_per_grid={"smoke": 1, "kiosk": 1}, interval_s=0.1)
    telemetry: dict[str, list[wire.Telemetry]] = {}
    events: list[tuple[str, wire.Event]] = []
    lock = threading.Lock()
    ready = threading.Event()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        topic = wire.parse_topic(msg.topic)
        if topic.channel not in (wire.Channel.TELEMETRY, wire.Channel.EVENT):
            return
        decoded = wire.decode(topic.channel, msg.payload)
        with lock:
            if isinstance(decoded, wire.Telemetry):
                telemetry.setdefault(topic.device_id, []).append(decoded)
            elif isinstance(decoded, wire.Event):
                events.append((topic.device_id, decoded))

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sim-agent-test")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: ready.set()
    sub.on_connect = lambda c, *_a: c.subscribe(wire.subscription(site=community.site), qos=1)
    sub.connect("127.0.0.1", mosquitto.port)
    sub.loop_start()
    wait_until(ready.is_set, 10, what="subscriber ready")
    agents = [
        Agent(parse_config(agent_config(entry, mosquitto.url, outbox={"backend": "memory"})))
        for entry in community.devices
    ]
    try:
        for agent in agents:
            agent.start()
        ids = [entry["device"]["id"] for entry in community.devices]
        wait_until(lambda: all(len(telemetry.get(d, [])) >= 3 for d in ids), 20, what="telemetry from every agent")
        smoke_id = next(d for d in ids if d.startswith("smoke"))
        find_sim(smoke_id).trigger("smoke")

        def smoke_active() -> bool:
            with lock:
                return any(d == smoke_id and e.type == "smoke" and e.state is wire.EventState.ACTIVE for d, e in events)

        wait_until(smoke_active, 10, what="smoke event at the broker")
        find_sim(smoke_id).release("smoke")

        def smoke_cleared() -> bool:
            with lock:
                return any(
                    d == smoke_id and e.type == "smoke" and e.state is wire.EventState.CLEARED for d, e in events
                )

        wait_until(smoke_cleared, 10, what="smoke cleared at the broker")
    finally:
        for agent in agents:
            agent.stop()
        sub.loop_stop()
        sub.disconnect()
    with lock:
        kiosk_id = next(d for d in ids if d.startswith("kiosk"))
        assert {"paper_pct", "transactions_total", "cpu_pct"} <= set(telemetry[kiosk_id][-1].points[0].metrics)
        assert "smoke_obscuration" in telemetry[smoke_id][-1].points[0].metrics
        for device, messages in telemetry.items():
            seqs = [m.seq for m in messages]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), device
