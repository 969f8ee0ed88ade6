"""`gridsentinel hub run` as a process with the embedded broker: the Foundation check with mosquitto_pub."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simulators.servers import free_port, port_open, wait_until
from tests.hub.conftest import ADMIN_HEADERS, ADMIN_TOKEN
from tests.servers import require_binary

pytestmark = pytest.mark.integration


def test_hub_run_embedded_dead_letters_and_clean_ctrl_c(tmp_path: Path) -> None:
    mosquitto_pub = require_binary("mosquitto_pub", "mosquitto-clients")
    http_port, mqtt_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "hub", "run", "--data-dir", str(data_dir),
         "--http-port", str(http_port), "--broker-port", str(mqtt_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "GRIDSENTINEL_ADMIN_TOKEN": ADMIN_TOKEN},
    )  # fmt: skip
    try:
        wait_until(lambda: port_open(http_port) or proc.poll() is not None, timeout=20, what="hub HTTP port")
        assert proc.poll() is None
        client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=5, headers=ADMIN_HEADERS)
        wait_until(lambda: client.get("/healthz").status_code == 200, what="healthz ok")
        big = tmp_path / "big.bin"
        big.write_bytes(b"x" * (2 * 1024 * 1024))
        topic = "gs/v1/site-a/kiosk-9/telemetry"
        for extra in (
            ["-m", "{not json"],
            ["-f", str(big)],
            ["-m", '{"v":1,"seq":1,"ts":1800000000000,"metrics":{"paper_pct":42}}'],
        ):
            cmd = [mosquitto_pub, "-p", str(mqtt_port), "-q", "1", "-t", topic, *extra]
            subprocess.run(cmd, check=True, timeout=10)
        wait_until(lambda: client.get("/api/v1/deadletters").json()["total"] == 2, what="2 dead letters")
        reasons = sorted(i["reason"] for i in client.get("/api/v1/deadletters").json()["items"])
        assert reasons == ["bad_json", "too_large"]
        wait_until(lambda: [d["latest"] for d in client.get("/api/v1/devices").json()] == [{"paper_pct": 42}])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert "hub stopped" in out and "Traceback" not in out
    assert (data_dir / "state.db").exists()
