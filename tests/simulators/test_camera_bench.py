"""The simulated camera street and ``gridsentinel bench cameras`` end to end on a small street.

Real mosquitto, a real hub with every plug-in, real headless Chromium for the camera view.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edge.vocabulary import METRICS
from simulators.camera_fleet import CAMERA_METRICS, street_cameras
from tests.servers import require_binary


def test_cameras_report_declared_metrics_and_spread_over_the_grids() -> None:
    assert set(CAMERA_METRICS) <= set(METRICS)  # names crossing components come from the vocabulary
    specs = street_cameras(7, ["330106001001001", "330106001001002"])
    assert [s.grid[-1] for s in specs] == ["1", "2", "1", "2", "1", "2", "1"]
    assert len({s.device_id for s in specs}) == 7
    assert all(s.labels["model"] and "tamper" in s.labels["analytics"] for s in specs)


@pytest.mark.integration
def test_small_street_arrives_whole_and_the_camera_view_renders() -> None:
    require_binary("mosquitto", "mosquitto")
    require_binary("chromium", "chromium")
    argv = ["--cameras", "120", "--grids", "6", "--interval", "2", "--seconds", "8", "--storm", "15", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "bench", "cameras", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    result = json.loads(done.stdout)  # stdout is the JSON object alone (logs go to stderr)
    assert result["cameras"] == 120 and result["grids"] == 6
    assert result["telemetry_msgs"] >= 120 * 3 and result["storm_events"] == 15
    assert result["lost"] == 0 and result["unacked_by_broker"] == 0
    assert result["tamper_incidents"] == 15  # every covered camera opened its incident
    assert 0 <= result["lag_p50_s"] <= result["lag_p99_s"] <= result["lag_max_s"]
    assert 0 < result["camera_view_s"] < 30
    assert done.returncode == (0 if result["ok"] else 1), done.stderr[-2000:]
