"""``gridsentinel bench incident`` end to end on a small load (real mosquitto, real hub, real load generator)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.servers import require_binary

pytestmark = pytest.mark.integration


def test_small_run_times_every_probe_and_prints_one_json_object() -> None:
    require_binary("mosquitto", "mosquitto")
    require_binary("influxd", "influxdb")
    argv = ["--rate", "500", "--devices", "20", "--probes", "10", "--probe-rate", "20", "--warmup-s", "0.5", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "bench", "incident", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)  # stdout is the JSON object alone (banner and logs go to stderr)
    assert result["broker"] == "mosquitto"
    assert result["store"] == "influxdb-v1"  # influxd is installed by the test command: the production store
    assert result["probes"] == result["probes_stored"] == 10
    assert 0 < result["incident_latency_p50_ms"] <= result["incident_latency_p99_ms"]
    assert result["background_sent_msgs_s"] > 0 and result["hub_ingested_msgs_s"] > 0
    assert result["p99_ok"] == (result["incident_latency_p99_ms"] < 250.0)
