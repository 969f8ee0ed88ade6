"""`gridsentinel hub run` killed with SIGKILL mid-stream: after a restart every published point is in influxd.

The devices here are the load generator's (no outbox, no answer to ``resend``), so nothing can be
filled in from the device side: the hub itself must not acknowledge a message to the broker before
its points are written or spooled, and the broker delivers the rest again to the persistent session.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from simulators.loadgen import LoadSpec
from simulators.servers import Influxd, Mosquitto, wait_until
from tests.hub.series.faults import BackgroundLoad, cli_hub

pytestmark = pytest.mark.integration

MESSAGES = 4000
RATE = 800.0  # msgs/s: a 5 s stream


def test_hub_kill_9_mid_stream_then_restart_loses_no_point(
    mosquitto: Mosquitto, influxd: Influxd, influx_db: str, tmp_path: Path
) -> None:
    hub = cli_hub(tmp_path, mosquitto.url, influxd.url, influx_db, "hub-k9")

    def stored() -> int:
        return influxd.count(influx_db, "unknown", "m0")

    hub.start()
    load = BackgroundLoad(LoadSpec(url=mosquitto.url, devices=20, messages=MESSAGES, rate=RATE, device_prefix="k9"))
    try:
        load.start()
        wait_until(lambda: stored() >= MESSAGES // 4, 20, what="a quarter of the stream stored")
        hub.kill()  # SIGKILL: points queued in the writer and PUBACKs held die with it
        at_kill = stored()
        time.sleep(1.0)  # the stream goes on; the broker queues it for the persistent session
        hub.start()
        result = load.join(60)
        assert result is not None and result.messages == MESSAGES and result.acked == MESSAGES
        assert at_kill < MESSAGES  # killed mid-stream
        wait_until(lambda: stored() >= MESSAGES, 30, what=f"all {MESSAGES} points in influxd")
        assert stored() == MESSAGES  # device timestamps: a point delivered twice is written twice, stored once
    finally:
        load.join(60)
        hub.stop()
    text = hub.log.read_text()
    assert "Traceback" not in text
    assert "data loss" not in text  # nothing was lost, so no loss may be declared either
    # The seq journal resumed each device exactly where the acknowledgements stopped: no gap to ask for.
    assert " opened for " not in text
