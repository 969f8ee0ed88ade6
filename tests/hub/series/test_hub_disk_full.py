"""`gridsentinel hub run` with its spool on a full disk while influxd is down: nothing is lost.

The spool directory is a real tmpfs filled to ENOSPC right after the store goes away, so the
writer cannot spool: it must hold the batch in memory with its PUBACKs, say so (alert and log),
and deliver everything once the store is back (the disk stays full: the held batch goes straight
to the store). The load generator's devices cannot resend, so a lost point would stay lost.
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
from tests.hub.series.conftest import SmallDisk
from tests.servers import MosquittoServer, free_port, wait_until
from tests.servers_influx import InfluxdServer

pytestmark = pytest.mark.integration

MESSAGES = 4000
RATE = 400.0  # msgs/s: a 10 s stream


def test_hub_with_a_full_spool_disk_and_the_store_down_loses_no_point(
    mosquitto: MosquittoServer, own_influxd: InfluxdServer, small_disk: SmallDisk, tmp_path: Path
) -> None:
    http_port = free_port()
    log = tmp_path / "hub.log"
    data = tmp_path / "hub"
    data.mkdir()
    (data / "spool").symlink_to(small_disk.root)  # only the spool is on the small disk
    with log.open("ab") as out:
        hub = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "hub", "run", "--mqtt-url", mosquitto.url,
             "--client-id", "hub-df", "--data-dir", str(data), "--http-port", str(http_port),
             "--series", "influxdb-v1", "--series-url", own_influxd.url, "--series-db", "gs"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "GRIDSENTINEL_ADMIN_TOKEN": ADMIN_TOKEN},
        )  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=2, headers=ADMIN_HEADERS)

    def metric(name: str) -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def healthy() -> bool:
        assert hub.poll() is None, log.read_text()[-3000:]
        try:
            return client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def stored() -> int:
        return own_influxd.count("gs", "unknown", "m0")

    results: list[LoadResult] = []
    spec = LoadSpec(url=mosquitto.url, devices=20, messages=MESSAGES, rate=RATE, device_prefix="df")
    load = threading.Thread(target=lambda: results.append(run_load(spec)))
    try:
        wait_until(healthy, 30, what="hub healthy (broker connected)")
        load.start()
        wait_until(lambda: stored() >= MESSAGES // 5, 20, what="a fifth of the stream stored")
        at_outage = stored()
        own_influxd.stop()
        small_disk.fill()
        wait_until(lambda: metric("gs_series_unspooled_lines") > 0, 20, what="a batch held in memory")
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["store_ok"] is False
        time.sleep(2.0)  # the stream goes on into the writer's queue; nothing of it is acknowledged
        own_influxd.start()  # the disk stays full: the held batch and the queue go straight to the store
        load.join(60)
        assert results and results[0].messages == MESSAGES and results[0].acked == MESSAGES
        assert at_outage < MESSAGES // 2  # the store went away mid-stream
        wait_until(lambda: stored() >= MESSAGES, 60, what=f"all {MESSAGES} points in influxd")
        assert stored() == MESSAGES
        assert metric("gs_series_unspooled_lines") == 0
    finally:
        load.join(60)
        hub.terminate()
        try:
            hub.wait(20)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
        client.close()
    text = log.read_text()
    assert "series alert spool_failed" in text and "No space left on device" in text
    assert "the spool works again" in text
    assert "Traceback" not in text and "data loss" not in text and " opened for " not in text
