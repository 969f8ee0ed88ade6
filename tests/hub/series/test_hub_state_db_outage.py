"""`gridsentinel hub run` on a real PostgreSQL state DB that goes away mid-stream and comes back.

Ingest and the series store go on; what waits for the state DB (here a dead letter sent during the
outage, and the device rows) is written once it is back; /healthz says so meanwhile, and the log
says it once instead of a traceback per retry.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.db import make_engine
from simulators.loadgen import LoadSpec
from simulators.servers import Influxd, Mosquitto, Postgres, wait_until
from tests.hub.series.faults import BackgroundLoad, cli_hub

pytestmark = pytest.mark.integration

MESSAGES = 3000
RATE = 300.0  # msgs/s: a 10 s stream


def test_hub_rides_out_a_state_db_outage_and_writes_what_waited(
    mosquitto: Mosquitto, influxd: Influxd, influx_db: str, own_pg: Postgres, tmp_path: Path
) -> None:
    state_url = own_pg.create_database()
    hub = cli_hub(tmp_path, mosquitto.url, influxd.url, influx_db, "hub-pg", "--state-url", state_url)

    def stored() -> int:
        return influxd.count(influx_db, "unknown", "m0")

    load = BackgroundLoad(LoadSpec(url=mosquitto.url, devices=10, messages=MESSAGES, rate=RATE, device_prefix="pg"))
    try:
        hub.start()
        load.start()
        wait_until(lambda: stored() >= MESSAGES // 5, 20, what="a fifth of the stream stored")
        own_pg.shut_down()
        wait_until(lambda: hub.client.get("/healthz").status_code == 503, 10, what="/healthz 503")
        assert hub.client.get("/healthz").json()["state_ok"] is False
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-q", "1",
             "-t", "gs/v1/load/pg-bad/telemetry", "-m", "{not json"],
            check=True, timeout=10,
        )  # fmt: skip
        wait_until(lambda: hub.metric('gs_dead_letters_total{reason="bad_json"}') >= 1, 10, what="dead letter seen")
        own_pg.start_again()
        wait_until(lambda: hub.client.get("/healthz").status_code == 200, 20, what="/healthz 200 again")
        result = load.join(60)
        assert result is not None and result.messages == MESSAGES and result.acked == MESSAGES
        wait_until(lambda: stored() >= MESSAGES, 30, what=f"all {MESSAGES} points in influxd")
        assert stored() == MESSAGES
    finally:
        load.join(60)
        hub.stop()
    engine = make_engine(state_url)
    with engine.connect() as conn:
        dead = conn.execute(text("SELECT reason, topic FROM dead_letters")).all()
        devices = conn.execute(text("SELECT count(*) FROM devices WHERE id LIKE 'pg-%' AND last_seq > 0")).scalar()
    engine.dispose()
    assert [tuple(row) for row in dead] == [("bad_json", "gs/v1/load/pg-bad/telemetry")]
    assert devices == 10
    log = hub.log.read_text()
    assert log.count("state DB unavailable") == 1 and log.count("state DB is back after") == 1
    assert "hub state flush failed" not in log
