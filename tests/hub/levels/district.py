"""A two-street district on one real hub: generated areas, people and devices, tokens per person.

Used by the level API tests and the Chromium page tests. Devices speak the wire contract over
MQTT (paho, no agent): a retained birth per device, smoke alarms on demand.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.wire import Channel, DeviceKind, DeviceState, Event, EventState, Severity, SnapshotRef, Status
from hub.context import need
from hub.security.auth import TokenStore
from hub.service import Hub
from simulators.community import Community, generate_district
from simulators.community_workflow import write_workflow
from simulators.servers import wait_until

DISTRICT, STREET_1, STREET_2 = "330106", "330106001", "330106002"
PEOPLE = ("operator-01", "sup-district", "s1-sup-street", "s2-sup-street", "s1-gw-001")
MIX = {"smoke": 1.0, "camera": 1.0}


def district() -> tuple[Community, ...]:
    """Two streets of one community of three unit grids each; a smoke sensor and a camera per grid."""
    return generate_district(2, 3, seed=11, mix_per_grid=MIX)


def prepare(data_dir: Path) -> tuple[Community, ...]:
    """Write the district's case workflow where the hub will read it; return the communities."""
    communities = district()
    write_workflow(data_dir / "cases.yaml", communities)
    return communities


@dataclass
class DistrictSite:
    """The running hub, its communities and a sign-in token per person of :data:`PEOPLE`."""

    hub: Hub
    communities: tuple[Community, ...]
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.hub.http_port}"

    def api(self, person: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[person]}"}, timeout=5)

    def devices(self) -> list[dict[str, Any]]:
        """Every device entry of the district (``device`` sections of the generated config)."""
        return [dict(entry["device"]) for c in self.communities for entry in c.devices]


def issue_tokens(hub: Hub) -> dict[str, str]:
    assert hub.ctx is not None
    tokens: TokenStore = need(hub.ctx.services.tokens, "tokens")
    return {p: tokens.issue_token(p, "levels test") for p in PEOPLE}


class DeviceBox:
    """The district's devices on one MQTT connection (births, alarms)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="levels-devices", protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.seq: dict[str, int] = {}

    def publish(self, site: str, device: str, channel: Channel, payload: bytes, retain: bool = False) -> None:
        self.client.publish(wire.topic(site, device, channel), payload, qos=1, retain=retain).wait_for_publish(5)

    def birth(self, device: dict[str, Any]) -> None:
        now = int(time.time() * 1000)
        labels = dict(device.get("labels") or {})
        if device["kind"] == "camera":
            labels |= {"location": f"Gate of {device['grid'][-3:]}", "model": "sim-640", "analytics": "people,tamper"}
        status = Status(
            DeviceState.ONLINE, 1, now, kind=DeviceKind(device["kind"]), grid=device["grid"], interval_s=60.0,
            labels=labels,
        )  # fmt: skip
        self.publish(device["site"], device["id"], Channel.STATUS, wire.encode(status), retain=True)

    def alarm(self, site: str, device: str, kind: str = "smoke", snapshot: bytes | None = None) -> None:
        """Raise an alarm; with ``snapshot`` (JPEG bytes) its redacted image follows on the snapshot channel."""
        seq = self.seq[device] = self.seq.get(device, 0) + 1
        ref = None if snapshot is None else SnapshotRef(hashlib.sha256(snapshot).hexdigest(), len(snapshot), "sent")
        event_id = f"{kind}-{seq}"
        ev = Event(seq, int(time.time() * 1000), event_id, kind, EventState.ACTIVE, Severity.CRITICAL, snapshot=ref)
        self.publish(site, device, Channel.EVENT, wire.encode(ev))
        if snapshot is not None:
            topic = wire.topic(site, device, Channel.SNAPSHOT, event_id=event_id)
            self.client.publish(topic, snapshot, qos=1).wait_for_publish(5)

    def camera_reading(self, site: str, device: str) -> None:
        """One poll of a healthy camera, shaped like the camera driver's telemetry."""
        seq = self.seq[device] = self.seq.get(device, 0) + 1
        now = int(time.time() * 1000)
        metrics = {"fps": 9.8, "stream_ok": True, "frame_age_s": 0.1, "people": 3}
        self.publish(
            site, device, Channel.TELEMETRY, wire.encode(wire.Telemetry(seq, now, (wire.Point(now, metrics),)))
        )

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def populate(site: DistrictSite, box: DeviceBox) -> None:
    """Birth every device, raise one smoke alarm in street 2 (it becomes a case) and report a case in
    street 1; wait until the hub holds them."""
    registry = site.hub.registry
    assert registry is not None
    entries = site.devices()
    for device in entries:
        box.birth(device)
        if device["kind"] == "camera":
            box.camera_reading(device["site"], device["id"])
    wait_until(lambda: len(registry.list_public()) == len(entries), timeout=10, what="district devices registered")
    smoke = next(d for d in entries if d["grid"].startswith(STREET_2) and d["kind"] == "sensor")
    box.alarm(smoke["site"], smoke["id"])
    with site.api("operator-01") as client:
        wait_until(
            lambda: any(c["grid"].startswith(STREET_2) for c in client.get("/api/v1/cases").json()),
            timeout=10,
            what="the street-2 alarm became a case",
        )
        report = {"category": "facilities", "title": "Broken gate", "grid": f"{STREET_1}001001"}
        created = client.post("/api/v1/cases", json=report)
        assert created.status_code == 201, created.text
