"""The fleet bench: raw MQTT packets are well-formed, and a quick ramp against real mosquitto sustains its rate."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource

import pytest

from hub.mqtt.codec import FrameBuffer, decode_body, encode
from hub.mqtt.packets import Connack, Connect, Puback, Publish
from simulators.bench import fleet as bench
from simulators.bench.fleet import RawMqttDevice
from tests.servers import require_binary


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)


async def _device_writes() -> tuple[bytes, RawMqttDevice]:
    device = RawMqttDevice("fleet-00001")
    transport = _Transport()
    device.connection_made(transport)
    device.send("gs/v1/s/d/telemetry", 7, b"x" * 200)
    device.send("gs/v1/s/d/status", 8, b"{}", retain=True)
    answers = encode(Connack()) + encode(Puback(7)) + encode(Puback(8))
    device.data_received(answers[:3])
    device.data_received(answers[3:])
    await device.connected
    return transport.written, device


def test_packets_follow_mqtt_311() -> None:
    written, device = asyncio.run(_device_writes())
    frames = [decode_body(header, body) for header, body in FrameBuffer().frames(written)]
    assert frames == [
        Connect("fleet-00001", keepalive=0),
        Publish("gs/v1/s/d/telemetry", b"x" * 200, qos=1, packet_id=7),
        Publish("gs/v1/s/d/status", b"{}", qos=1, retain=True, packet_id=8),
    ]
    assert device.acked == 2


def test_fd_limit_is_raised_not_lowered() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert bench.raise_fd_limit(16) == soft


@pytest.mark.integration
def test_quick_fleet_run_reports_devices_and_rate(capsys: pytest.CaptureFixture[str]) -> None:
    require_binary("mosquitto", "mosquitto")
    parser = argparse.ArgumentParser()
    bench.configure(parser)
    args = parser.parse_args(["--steps", "50,200", "--interval", "1", "--seconds", "2", "--json"])
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"devices", "msgs_per_s", "steps"} <= set(result)
    assert [s["devices"] for s in result["steps"]] == [50, 200]
    # every published message was PUBACKed by mosquitto (no timing claim: counts only)
    for step in result["steps"]:
        assert step["acked_per_s"] == pytest.approx(step["msgs_per_s"], rel=0.05)
    assert result["devices"] in (0, 50, 200)
