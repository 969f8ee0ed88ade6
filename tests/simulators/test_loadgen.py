"""Load generator against a real mosquitto: every (device, seq) arrives exactly once."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from simulators.loadgen import LoadError, LoadSpec, run_load
from tests.servers import MosquittoServer, free_port, wait_until


class Collector:
    """A foreign subscriber decoding every telemetry message it receives."""

    def __init__(self, port: int, site: str) -> None:
        self.seen: Counter[tuple[str, int]] = Counter()
        self.points = 0
        self.bad: list[str] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{site}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(wire.subscription(wire.Channel.TELEMETRY, site=site), qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self.subscribed.is_set, 10, what="collector subscribed")

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        try:
            parsed = wire.parse_topic(msg.topic)
            telemetry = wire.decode(wire.Channel.TELEMETRY, msg.payload)
        except wire.WireError as exc:
            self.bad.append(str(exc))
            return
        assert isinstance(telemetry, wire.Telemetry)
        with self.lock:
            self.seen[(parsed.device_id, telemetry.seq)] += 1
            self.points += len(telemetry.points)

    def total(self) -> int:
        with self.lock:
            return sum(self.seen.values())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.integration
@pytest.mark.parametrize(("qos", "processes"), [(1, 2), (0, 1)])
def test_every_device_seq_arrives_once(mosquitto: MosquittoServer, qos: int, processes: int) -> None:
    site = f"load{qos}"
    collector = Collector(mosquitto.port, site)
    try:
        spec = LoadSpec(url=mosquitto.url, devices=50, messages=2000, qos=qos, points=3, processes=processes, site=site)
        result = run_load(spec)
        wait_until(lambda: collector.total() >= 2000, 20, what="2000 messages at the subscriber")
    finally:
        collector.close()
    assert result.messages == 2000 and result.connections == 50
    assert len(result.sent) == 50 and all(n == 40 for n in result.sent.values())
    if qos == 1:
        assert result.acked == 2000
    expected = {(d, s) for d, top in result.max_seq.items() for s in range(1, top + 1)}
    assert set(collector.seen) == expected
    assert max(collector.seen.values()) == 1
    assert collector.points == 3 * 2000
    assert collector.bad == []


@pytest.mark.integration
def test_target_rate_is_respected(mosquitto: MosquittoServer) -> None:
    result = run_load(LoadSpec(url=mosquitto.url, devices=5, messages=100, rate=200.0, site="paced"))
    assert 0.4 <= result.elapsed_s <= 3.0  # flat out would take ~0.02 s
    assert result.msgs_per_s < 250


def test_unreachable_broker_fails_clearly() -> None:
    with pytest.raises((LoadError, ConnectionRefusedError)):
        run_load(LoadSpec(url=f"mqtt://127.0.0.1:{free_port()}", devices=1, messages=1, connect_timeout_s=2))
    with pytest.raises(LoadError, match="must look like"):
        run_load(LoadSpec(url="http://x", devices=1, messages=1))


def test_cli_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "simulators.loadgen", "--help"], capture_output=True, text=True, check=True
    )
    assert "--devices" in out.stdout and "--qos" in out.stdout
