"""Foundation end to end: a device on a real mosquitto -> hub -> REST API (devices, dead letters, LWT, gaps)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge import wire
from edge.wire import Channel, DeviceState
from hub.ingest.sinks import DeviceRef
from hub.series.base import SeriesPoint
from simulators.servers import Mosquitto, wait_until
from tests.hub.conftest import HubFactory, api
from tests.hub.device import FakeDevice, now_ms

pytestmark = pytest.mark.integration


def _device(client: httpx.Client, device_id: str) -> dict[str, Any] | None:
    resp = client.get(f"/api/v1/devices/{device_id}")
    return resp.json() if resp.status_code == 200 else None


def _state(client: httpx.Client, device_id: str) -> str | None:
    d = _device(client, device_id)
    return None if d is None else d["state"]


def test_device_online_with_latest_reading(mosquitto: Mosquitto, make_hub: HubFactory) -> None:
    hub = make_hub()
    wait_until(lambda: hub.ingest is not None and hub.ingest.connected, what="hub connected")
    dev = FakeDevice(mosquitto.port)
    dev.connect()
    dev.telemetry(1, paper_pct=80.0, cpu_pct=12.5)
    dev.telemetry(2, paper_pct=79.0)
    with api(hub) as client:
        wait_until(lambda: (_device(client, "kiosk-1") or {}).get("latest", {}).get("paper_pct") == 79.0)
        listed = client.get("/api/v1/devices").json()
        assert [d["id"] for d in listed] == ["kiosk-1"]
        d = listed[0]
        assert d["state"] == "online" and d["kind"] == "kiosk" and d["site"] == "site-a"
        assert d["grid"] == "110101001001001" and d["labels"] == {"street": "main"} and d["epoch"] == 1
        assert d["latest"] == {"paper_pct": 79.0, "cpu_pct": 12.5}
        assert d["last_seen_ms"] is not None and abs(d["last_seen_ms"] - now_ms()) < 10_000
        missing = client.get("/api/v1/devices/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["broker_connected"] is True
    assert hub.writer is not None and hub.writer.flush(5)
    assert hub.store is not None and hub.store.count("kiosk", device="kiosk-1") == 2
    dev.close()


def test_abrupt_disconnect_goes_offline_via_lwt(mosquitto: Mosquitto, make_hub: HubFactory) -> None:
    hub = make_hub()
    health: list[tuple[str, str, str]] = []

    class HealthSink:
        def on_health(self, device: DeviceRef, old: str, new: str, at_ms: int) -> None:
            health.append((device.device_id, old, new))

    assert hub.ctx is not None
    hub.ctx.sinks.append(HealthSink())  # type: ignore[arg-type]  # a partial sink: ingest calls what exists
    dev = FakeDevice(mosquitto.port, "kiosk-lwt")
    keepalive = 2
    dev.connect(keepalive=keepalive)
    with api(hub) as client:
        wait_until(lambda: _state(client, "kiosk-lwt") == "online", what="online")
        killed = time.monotonic()
        dev.kill()
        wait_until(lambda: _state(client, "kiosk-lwt") == "offline", timeout=1.5 * keepalive, what="offline via LWT")
        assert time.monotonic() - killed < 1.5 * keepalive
        assert _device(client, "kiosk-lwt")["status"] == "offline"  # type: ignore[index]
    assert health == [("kiosk-lwt", "unknown", "online"), ("kiosk-lwt", "online", "offline")]
    assert hub.writer is not None and hub.writer.flush(5)
    assert hub.store is not None and hub.store.count("device_status", device="kiosk-lwt") == 2


def test_bad_payloads_go_to_dead_letter_and_ingest_goes_on(mosquitto: Mosquitto, make_hub: HubFactory) -> None:
    hub = make_hub()
    dev = FakeDevice(mosquitto.port, "kiosk-dl")
    dev.connect()
    tele = dev.topic(Channel.TELEMETRY)
    dev.publish_raw(tele, b"{not json")
    dev.publish_raw(tele, b"x" * (2 * 1024 * 1024))
    dev.publish_raw("gs/v1/site-a/BAD/telemetry", b"{}")
    dev.telemetry(1, paper_pct=50.0)
    with api(hub) as client:
        wait_until(lambda: client.get("/api/v1/deadletters").json()["total"] == 3, what="3 dead letters")
        page = client.get("/api/v1/deadletters").json()
        reasons = {i["reason"]: i for i in page["items"]}
        assert set(reasons) == {"bad_json", "too_large", "bad_id"}
        big = reasons["too_large"]
        assert big["payload_size"] == 2 * 1024 * 1024 and big["truncated"] is True and big["topic"] == tele
        assert reasons["bad_json"]["payload_preview"] == "{not json" and reasons["bad_json"]["device_id"] == "kiosk-dl"
        wait_until(lambda: (_device(client, "kiosk-dl") or {}).get("latest") == {"paper_pct": 50.0})
        only = client.get("/api/v1/deadletters", params={"reason": "bad_json"}).json()
        assert only["total"] == 1
        metrics = client.get("/metrics").text
        assert 'gs_dead_letters_total{reason="too_large"} 1.0' in metrics


def test_late_lwt_of_older_epoch_does_not_override_newer_online(mosquitto: Mosquitto, make_hub: HubFactory) -> None:
    hub = make_hub()
    dev = FakeDevice(mosquitto.port, "kiosk-ep", epoch=2)
    dev.connect()
    with api(hub) as client:
        wait_until(lambda: _state(client, "kiosk-ep") == "online")
        # The LWT of session 1 arrives late, after session 2's birth; it was built when session 1 connected.
        old = dev.status(DeviceState.OFFLINE, epoch=1, ts=now_ms() - 60_000)
        dev.publish_raw(dev.topic(Channel.STATUS), old, retain=True)
        dev.telemetry(1, paper_pct=1.0)  # ordered after the late LWT on the same connection
        wait_until(lambda: (_device(client, "kiosk-ep") or {}).get("latest") == {"paper_pct": 1.0})
        d = _device(client, "kiosk-ep")
        assert d is not None and d["state"] == "online" and d["epoch"] == 2
        assert hub.stats.stale_status == 1


def test_duplicates_stored_once_and_gap_resend_then_data_loss(mosquitto: Mosquitto, make_hub: HubFactory) -> None:
    hub = make_hub(gap_grace_s=0.3, gap_timeout_s=1.5)
    dev = FakeDevice(mosquitto.port, "kiosk-gap")
    dev.connect()
    for seq in (1, 2, 2, 3, 1, 3):
        dev.telemetry(seq, paper_pct=float(seq))
    dev.telemetry(7, paper_pct=7.0)  # 4..6 missing
    with api(hub) as client:
        wait_until(lambda: any(c.op == "resend" for c in dev.commands), timeout=5, what="resend command")
        resend = next(c for c in dev.commands if c.op == "resend")
        assert dict(resend.args) == {"first": 4, "last": 6}
        dev.telemetry(5, paper_pct=5.0)  # a late arrival fills part of the gap
        wait_until(lambda: client.get("/api/v1/gaps").json()["total"] >= 1, timeout=5, what="data-loss record")
        gaps = client.get("/api/v1/gaps").json()
        lost = sorted((i["first"], i["last"], i["cause"]) for i in gaps["items"])
        assert lost == [(4, 4, "unfilled"), (6, 6, "unfilled")] or lost == [(4, 4, "unfilled")]
        wait_until(lambda: client.get("/api/v1/gaps").json()["total"] == 2, timeout=5, what="both lost")
        assert client.get("/api/v1/gaps").json()["open"] == []
    assert hub.writer is not None and hub.writer.flush(5)
    assert hub.store is not None and hub.store.count("kiosk", device="kiosk-gap") == 5  # 1,2,3,7,5
    assert hub.stats.duplicates == 3
    assert hub.stats.lost_seqs == 2


def test_declared_gap_notice_is_recorded_at_once(mosquitto: Mosquitto, make_hub: HubFactory) -> None:
    hub = make_hub()
    dev = FakeDevice(mosquitto.port, "kiosk-notice")
    dev.connect()
    dev.telemetry(1, paper_pct=1.0)
    notice = wire.GapNotice(seq=12, ts=now_ms(), first=2, last=11, reason="outbox_full")
    dev.publish_raw(dev.topic(Channel.GAP), wire.encode(notice))
    with api(hub) as client:
        wait_until(lambda: client.get("/api/v1/gaps").json()["total"] == 1, what="declared loss")
        item = client.get("/api/v1/gaps").json()["items"][0]
        assert (item["first"], item["last"], item["count"], item["cause"]) == (2, 11, 10, "declared")
        assert item["detail"] == "telemetry: outbox_full"
    assert hub.ctx is not None and any(e.kind == "data_loss" for e in hub.ctx.bus.history)
    assert not dev.commands  # nothing to resend: the device said it is gone


def test_persistent_session_delivers_what_was_published_while_hub_was_down(
    mosquitto: Mosquitto, make_hub: HubFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "persist"
    hub = make_hub(data_dir=data_dir, client_id="hub-persist")
    dev = FakeDevice(mosquitto.port, "kiosk-p")
    dev.connect()
    dev.telemetry(1, paper_pct=1.0)
    with api(hub) as client:
        wait_until(lambda: (_device(client, "kiosk-p") or {}).get("last_seq") == 1)
    hub.stop()
    for seq in range(2, 12):  # published while the hub is down: held by the broker for its session
        dev.telemetry(seq, paper_pct=float(seq))
    again = make_hub(data_dir=data_dir, client_id="hub-persist")
    with api(again) as client:
        wait_until(lambda: (_device(client, "kiosk-p") or {}).get("last_seq") == 11, what="queued messages")
        assert _device(client, "kiosk-p")["latest"] == {"paper_pct": 11.0}  # type: ignore[index]
    assert again.writer is not None and again.writer.flush(5)
    assert again.store is not None and again.store.count("kiosk", device="kiosk-p") == 11
    assert again.stats.gaps["opened"] == 0 and again.stats.duplicates == 0


def test_bad_series_lines_land_in_the_dead_letter(make_hub: HubFactory) -> None:
    hub = make_hub()
    assert hub.writer is not None
    hub.writer.submit([SeriesPoint("kiosk", {"device": "kiosk-x", "site": "s"}, {"temp_c": float("nan")}, now_ms())])
    assert hub.writer.flush(5)
    with api(hub) as client:
        wait_until(lambda: client.get("/api/v1/deadletters").json()["total"] == 1, what="series dead letter")
        item = client.get("/api/v1/deadletters").json()["items"][0]
        assert item["source"] == "series" and item["topic"] == "(series)"
        assert client.post(f"/api/v1/deadletters/{item['id']}/requeue").status_code == 409
