"""The README's demo command, end to end: a real process, real agents, real MQTT clients.

Starts ``gridsentinel demo`` on free ports, waits until the API lists at least 60
devices all online with a latest reading, publishes a malformed and an oversized
payload with the ``mosquitto_pub`` binary, checks both land in the dead letter
with reasons while ingest goes on, then stops the demo with Ctrl-C (SIGINT) and
expects a clean exit.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from simulators.servers import free_port, wait_until
from tests.servers import require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _devices_ready(api: str, want: int) -> bool:
    try:
        devices = _get(f"{api}/api/v1/devices")
    except OSError:
        return False
    return len(devices) >= want and all(d["state"] == "online" and d["latest"] for d in devices)


def test_demo_serves_a_live_community_and_dead_letters_bad_input(tmp_path: Path) -> None:
    mosquitto_pub = require_binary("mosquitto_pub", "mosquitto-clients")
    http_port, mqtt_port = free_port(), free_port()
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "demo",
            "--http-port",
            str(http_port),
            "--mqtt-port",
            str(mqtt_port),
            "--data-dir",
            str(tmp_path / "data"),
            "--interval",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{http_port}"
    try:
        started = time.monotonic()
        wait_until(lambda: _devices_ready(api, 60), timeout=60, interval=0.5, what="60 devices online with readings")
        ready_s = time.monotonic() - started
        devices = _get(f"{api}/api/v1/devices")
        assert {d["kind"] for d in devices} == {"camera", "kiosk", "sensor"}
        assert len({d["grid"] for d in devices}) >= 3
        assert ready_s < 60

        topic = "gs/v1/sunrise/smoke-001-01/telemetry"
        big = tmp_path / "big.bin"
        big.write_bytes(b"a" * 2_000_000)
        for extra in (["-m", "{not json"], ["-f", str(big)]):
            subprocess.run(
                [mosquitto_pub, "-h", "127.0.0.1", "-p", str(mqtt_port), "-t", topic, *extra], check=True, timeout=10
            )

        def reasons() -> set[str]:
            return {d["reason"] for d in _get(f"{api}/api/v1/deadletters")["items"]}

        wait_until(lambda: {"bad_json", "too_large"} <= reasons(), timeout=10, what="both dead letters")
        # Ingest goes on: the device keeps reporting after the bad input.
        before = next(d for d in _get(f"{api}/api/v1/devices") if d["id"] == "smoke-001-01")["last_seq"]
        wait_until(
            lambda: next(d for d in _get(f"{api}/api/v1/devices") if d["id"] == "smoke-001-01")["last_seq"] > before,
            timeout=15,
            what="smoke-001-01 reporting again",
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = -9
        log.close()
    output = (tmp_path / "demo.log").read_text(errors="replace")
    full_log = (tmp_path / "data" / "demo.log").read_text(errors="replace")
    assert code == 0, output[-3000:] + full_log[-3000:]
    # The terminal's first screen is the demo's URLs and sign-in links, not start-up logging; the
    # whole log is in the data dir.
    first_screen = [line for line in output.splitlines() if line.strip()][:12]
    assert any("operator page" in line for line in first_screen), first_screen
    assert not [line for line in output.splitlines() if " INFO " in line], output[:3000]
    assert "hub up:" in full_log and "hub stopped" in full_log
