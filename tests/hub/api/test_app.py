"""The REST API over HTTP on a running hub: OpenAPI, dead-letter requeue/purge, series, metrics, SSE stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from edge.wire import Channel
from hub.api.app import create_app
from hub.context import HubContext
from hub.db import make_engine, session_factory, sqlite_url
from simulators.servers import Mosquitto, wait_until
from tests.hub.conftest import ADMIN_HEADERS, FirstStreamEvent, HubFactory, api
from tests.hub.device import FakeDevice, now_ms


def test_openapi_is_valid_and_lists_core_routes(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    ctx = HubContext(data_dir=tmp_path, engine=engine, sessions=session_factory(engine))
    client = TestClient(create_app(ctx))
    spec = client.get("/openapi.json").json()
    validate(spec)
    for path in (
        "/healthz",
        "/metrics",
        "/api/v1/devices",
        "/api/v1/devices/{device_id}",
        "/api/v1/deadletters",
        "/api/v1/deadletters/{dead_letter_id}/requeue",
        "/api/v1/gaps",
        "/api/v1/series",
        "/api/v1/stream",
    ):
        assert path in spec["paths"], path  # fmt: skip
    assert client.get("/api/v1/devices").status_code == 503  # no registry service: says so
    assert client.get("/healthz").status_code == 503
    assert "GridSentinel hub" in client.get("/").text


@pytest.mark.integration
def test_requeue_purge_series_metrics_over_http(mosquitto: Mosquitto, make_hub: HubFactory) -> None:
    hub = make_hub()
    dev = FakeDevice(mosquitto.port, "kiosk-api")
    dev.connect()
    tele = dev.topic(Channel.TELEMETRY)
    ts = now_ms()
    dev.publish_raw(tele, json.dumps({"v": 1, "seq": 1, "ts": ts, "metrics": {"Paper": 5}}).encode())
    dev.publish_raw(tele, b"{not json")
    with api(hub) as client:
        wait_until(lambda: client.get("/api/v1/deadletters").json()["total"] == 2)
        items = {i["reason"]: i for i in client.get("/api/v1/deadletters").json()["items"]}
        bad_metric = items["bad_metric"]
        detail = client.get(f"/api/v1/deadletters/{bad_metric['id']}").json()
        assert json.loads(detail["payload_text"])["metrics"] == {"Paper": 5}
        refused = client.post(f"/api/v1/deadletters/{bad_metric['id']}/requeue")
        assert refused.status_code == 422 and refused.json()["detail"]["reason"] == "bad_metric"
        fixed = json.dumps({"v": 1, "seq": 1, "ts": ts, "metrics": {"paper_pct": 5}})
        ok = client.post(f"/api/v1/deadletters/{bad_metric['id']}/requeue", json={"payload": fixed})
        assert ok.status_code == 200 and ok.json() == {"id": bad_metric["id"], "requeued": True}
        assert client.get(f"/api/v1/deadletters/{bad_metric['id']}").status_code == 404
        assert client.get("/api/v1/devices/kiosk-api").json()["latest"] == {"paper_pct": 5}
        assert client.delete("/api/v1/deadletters").json() == {"deleted": 1}
        assert client.get("/api/v1/deadletters").json()["total"] == 0
        assert hub.writer is not None and hub.writer.flush(5)
        rows = client.get(
            "/api/v1/series",
            params={"device": "kiosk-api", "metric": "paper_pct", "start": ts - 60_000, "end": ts + 60_000,
                    "every": 60},
        ).json()["rows"]  # fmt: skip
        assert [r["value"] for r in rows if r["value"] is not None] == [5.0]
        metrics = client.get("/metrics").text
        assert 'gs_ingest_messages_total{channel="telemetry"} 4.0' in metrics  # 2 over MQTT + 2 requeue attempts
        assert 'gs_devices{state="online"} 1.0' in metrics and "gs_ingest_lag_seconds_bucket" in metrics
        assert "gs_broker_connected 1.0" in metrics


@pytest.mark.integration
def test_stream_sends_device_health_changes(mosquitto: Mosquitto, make_hub: HubFactory) -> None:
    hub = make_hub()
    stream = FirstStreamEvent(f"http://127.0.0.1:{hub.http_port}/api/v1/stream?kinds=device", ADMIN_HEADERS).start()
    wait_until(lambda: hub.ctx is not None and len(hub.ctx.bus._subs) == 1, what="SSE subscribed")
    dev = FakeDevice(mosquitto.port, "kiosk-sse")
    dev.connect()
    received = [e for e in [stream.wait()] if e is not None]
    assert received and received[0]["id"] == "kiosk-sse" and received[0]["state"] == "online"
    assert received[0]["old_state"] == "unknown"
