"""The fleet bench: raw MQTT packets are well-formed, and a quick ramp against real mosquitto sustains its rate."""

from __future__ import annotations

import argparse
import json

import pytest

from simulators.bench import fleet as bench
from tests.servers import require_binary


def test_packets_follow_mqtt_311() -> None:
    connect = bench.connect_packet("fleet-00001")
    assert connect[0] == 0x10 and connect[1] == len(connect) - 2
    assert connect[2:8] == b"\x00\x04MQTT" and connect[8] == 4 and connect[9] == 0x02
    publish = bench.publish_packet("gs/v1/s/d/telemetry", 7, b"x" * 200)
    assert publish[0] == 0x32
    # 200 + topic + id > 127: a two-byte remaining length
    length = (publish[1] & 0x7F) + (publish[2] << 7)
    assert length == len(publish) - 3
    assert publish[3:5] == len(b"gs/v1/s/d/telemetry").to_bytes(2, "big")


def test_fd_limit_is_raised_not_lowered() -> None:
    import resource

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
