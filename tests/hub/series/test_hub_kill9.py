"""`gridsentinel hub run` killed with SIGKILL mid-stream: after a restart every published point is in influxd.

The devices here are the load generator's (no outbox, no answer to ``resend``), so nothing can be
filled in from the device side: the hub itself must not acknowledge a message to the broker before
its points are written or spooled, and the broker delivers the rest again to the persistent session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from simulators.loadgen import LoadResult, LoadSpec, run_load
from tests.hub.conftest import ADMIN_HEADERS, ADMIN_TOKEN
from tests.servers import MosquittoServer, free_port, wait_until
from tests.servers_influx import InfluxdServer

pytestmark = pytest.mark.integration

MESSAGES = 4000
RATE = 800.0  # msgs/s: a 5 s stream


def test_hub_kill_9_mid_stream_then_restart_loses_no_point(
    mosquitto: MosquittoServer, influxd: InfluxdServer, influx_db: str, tmp_path: Path
) -> None:
    http_port = free_port()
    log = tmp_path / "hub.log"

    def start_hub() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "hub", "run", "--mqtt-url", mosquitto.url,
                 "--client-id", "hub-k9", "--data-dir", str(tmp_path / "hub"), "--http-port", str(http_port),
                 "--series", "influxdb-v1", "--series-url", influxd.url, "--series-db", influx_db],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "GRIDSENTINEL_ADMIN_TOKEN": ADMIN_TOKEN},
            )  # fmt: skip
        client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=2, headers=ADMIN_HEADERS)

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                return client.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, 30, what="hub healthy (broker connected)")
        return proc

    def stored() -> int:
        return influxd.count(influx_db, "unknown", "m0")

    hub = start_hub()
    results: list[LoadResult] = []
    spec = LoadSpec(url=mosquitto.url, devices=20, messages=MESSAGES, rate=RATE, device_prefix="k9")
    load = threading.Thread(target=lambda: results.append(run_load(spec)))
    try:
        load.start()
        wait_until(lambda: stored() >= MESSAGES // 4, 20, what="a quarter of the stream stored")
        hub.kill()  # SIGKILL: points queued in the writer and PUBACKs held die with it
        hub.wait()
        at_kill = stored()
        time.sleep(1.0)  # the stream goes on; the broker queues it for the persistent session
        hub = start_hub()
        load.join(60)
        assert results and results[0].messages == MESSAGES and results[0].acked == MESSAGES
        assert at_kill < MESSAGES  # killed mid-stream
        wait_until(lambda: stored() >= MESSAGES, 30, what=f"all {MESSAGES} points in influxd")
        assert stored() == MESSAGES  # device timestamps: a point delivered twice is written twice, stored once
    finally:
        load.join(60)
        if hub.poll() is None:
            hub.kill()
            hub.wait()
    text = log.read_text()
    assert "Traceback" not in text
    assert "data loss" not in text  # nothing was lost, so no loss may be declared either
    # The seq journal resumed each device exactly where the acknowledgements stopped: no gap to ask for.
    assert " opened for " not in text
