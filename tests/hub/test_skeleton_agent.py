"""The walking skeleton with the real edge agent process: agent -> mosquitto -> hub -> API.

``gridsentinel edge run --config FILE`` runs as its own process with a simulated
sensor; the hub shows the device online with its latest reading; after
``kill -9`` of the agent the broker publishes its LWT and the hub shows it
offline within 1.5 x keepalive.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulators.servers import Mosquitto, wait_until
from tests.hub.conftest import HubFactory, api

pytestmark = pytest.mark.integration

KEEPALIVE_S = 2


def _config(path: Path, mqtt_url: str) -> Path:
    path.write_text(
        f"""
[device]
id = "smoke-skel-01"
site = "skeleton"
kind = "sensor"
grid = "330106001001001"

[mqtt]
url = "{mqtt_url}"
keepalive_s = {KEEPALIVE_S}

[outbox]
backend = "sqlite"
path = "{path.parent / "outbox.db"}"

[[drivers]]
type = "sim_sensor"
profile = "smoke"
seed = 7
interval_s = 0.5
"""
    )
    return path


def test_real_agent_process_online_then_offline_via_lwt_after_kill9(
    tmp_path: Path, mosquitto: Mosquitto, make_hub: HubFactory
) -> None:
    hub = make_hub()
    config = _config(tmp_path / "agent.toml", mosquitto.url)
    check = subprocess.run(
        [sys.executable, "-m", "edge.cli", "edge", "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "edge", "run", "--config", str(config)], stdout=log, stderr=log
    )
    try:
        with api(hub) as client:

            def device() -> dict[str, object]:
                resp = client.get("/api/v1/devices/smoke-skel-01")
                return resp.json() if resp.status_code == 200 else {}

            wait_until(
                lambda: device().get("state") == "online" and device().get("latest"),
                timeout=30,
                what="agent online with a latest reading",
            )
            d = device()
            assert d["kind"] == "sensor" and d["site"] == "skeleton" and d["grid"] == "330106001001001"
            assert isinstance(d["latest"], dict) and d["latest"]
            agent.send_signal(signal.SIGKILL)
            agent.wait(10)
            killed = time.monotonic()
            wait_until(
                lambda: device().get("state") == "offline",
                timeout=1.5 * KEEPALIVE_S,
                interval=0.05,
                what="offline via LWT within 1.5 x keepalive",
            )
            elapsed = time.monotonic() - killed
            print(f"offline {elapsed:.2f} s after kill -9")
            assert elapsed <= 1.5 * KEEPALIVE_S
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        log.close()
