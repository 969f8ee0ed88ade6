"""`gridsentinel hub run` with its spool on a full disk while influxd is down: nothing is lost.

The spool directory is a real tmpfs filled to ENOSPC right after the store goes away, so the
writer cannot spool: it must hold the batch in memory with its PUBACKs, say so (alert and log),
and deliver everything once the store is back (the disk stays full: the held batch goes straight
to the store). The load generator's devices cannot resend, so a lost point would stay lost.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from simulators.loadgen import LoadSpec
from simulators.servers import Influxd, Mosquitto, wait_until
from tests.hub.series.conftest import SmallDisk
from tests.hub.series.faults import BackgroundLoad, cli_hub

pytestmark = pytest.mark.integration

MESSAGES = 4000
RATE = 400.0  # msgs/s: a 10 s stream


def test_hub_with_a_full_spool_disk_and_the_store_down_loses_no_point(
    mosquitto: Mosquitto, own_influxd: Influxd, small_disk: SmallDisk, tmp_path: Path
) -> None:
    data = tmp_path / "hub"
    data.mkdir()
    (data / "spool").symlink_to(small_disk.root)  # only the spool is on the small disk
    hub = cli_hub(tmp_path, mosquitto.url, own_influxd.url, "gs", "hub-df")

    def stored() -> int:
        return own_influxd.count("gs", "unknown", "m0")

    load = BackgroundLoad(LoadSpec(url=mosquitto.url, devices=20, messages=MESSAGES, rate=RATE, device_prefix="df"))
    try:
        hub.start()
        load.start()
        wait_until(lambda: stored() >= MESSAGES // 5, 20, what="a fifth of the stream stored")
        at_outage = stored()
        own_influxd.stop()
        small_disk.fill()
        wait_until(lambda: hub.metric("gs_series_unspooled_lines") > 0, 20, what="a batch held in memory")
        health = hub.client.get("/healthz")
        assert health.status_code == 503 and health.json()["store_ok"] is False
        time.sleep(2.0)  # the stream goes on into the writer's queue; nothing of it is acknowledged
        own_influxd.start()  # the disk stays full: the held batch and the queue go straight to the store
        result = load.join(60)
        assert result is not None and result.messages == MESSAGES and result.acked == MESSAGES
        assert at_outage < MESSAGES // 2  # the store went away mid-stream
        wait_until(lambda: stored() >= MESSAGES, 60, what=f"all {MESSAGES} points in influxd")
        assert stored() == MESSAGES
        assert hub.metric("gs_series_unspooled_lines") == 0
    finally:
        load.join(60)
        hub.stop()
    text = hub.log.read_text()
    assert "series alert spool_failed" in text and "No space left on device" in text
    assert "the spool works again" in text
    assert "Traceback" not in text and "data loss" not in text and " opened for " not in text
