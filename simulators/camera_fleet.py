"""A street of simulated cameras on real MQTT: the camera driver's telemetry and events, no video decoded.

One asyncio loop holds one raw MQTT 3.1.1 connection per camera (client id = device id, QoS 1;
the framing of :mod:`simulators.bench.fleet`). Each camera sends a retained birth (kind camera, its
grid, location/model/analytics labels), then every ``interval_s`` the metrics
:class:`edge.camera.driver.CameraDriver` reports (fps, stream, last frame age, latency, people,
motion, brightness, sharpness; seeded values, not analytics), and on demand tamper events
(``tamper_covered`` and friends) exactly as the camera pipeline raises them. Telemetry and events
share one per-device seq, as the edge agent's outbox does, so the hub's gap detection sees a
real device. Every sent ``(device, seq)`` is recorded with its device timestamp so a bench can
check that each arrived once and how late.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from edge import wire
from edge.vocabulary import EventType
from edge.wire import Channel, DeviceKind, DeviceState, Event, EventState, MetricValue, Point, Severity, Status
from hub.mqtt.codec import encode
from hub.mqtt.packets import Disconnect
from simulators.bench.fleet import RawMqttDevice

logger = logging.getLogger(__name__)

#: Metric names a camera box reports (all declared in edge.vocabulary.METRICS).
CAMERA_METRICS: Final = (
    "fps", "stream_ok", "frame_age_s", "latency_ms", "people", "motion_ratio", "brightness", "sharpness",
)  # fmt: skip
MODELS: Final = ("DS-2CD2347", "IPC-HFW3441", "sim-640")
ANALYTICS: Final = ("people,tamper", "people,crowd,tamper", "intrusion,loitering,tamper")
#: CONNECTs in flight at once (mosquitto accepts them faster one burst at a time).
CONNECT_BURST: Final = 200


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """One camera of the street: id, site, grid and inventory labels."""

    device_id: str
    site: str
    grid: str
    labels: dict[str, str]


def street_cameras(count: int, grids: Sequence[str], site: str = "street", seed: int = 7) -> list[CameraSpec]:
    """``count`` cameras spread evenly over ``grids``, with seeded locations, models and analytics."""
    if not grids:
        raise ValueError("no grids to place cameras in")
    rng = random.Random(seed)
    out = []
    for i in range(count):
        grid = grids[i % len(grids)]
        labels = {
            "location": f"Pole {i // len(grids) + 1:03d}, grid {grid[-3:]}",
            "model": rng.choice(MODELS),
            "analytics": rng.choice(ANALYTICS),
        }
        out.append(CameraSpec(f"cam-{i + 1:04d}", site, grid, labels))
    return out


@dataclass
class Sent:
    """What the fleet sent: device timestamp (ms) per (device, seq), and counts per channel."""

    ts_ms: dict[tuple[str, int], int] = field(default_factory=dict)
    telemetry: int = 0
    events: int = 0
    #: When each camera sent its first event (the storm's alarm), ms.
    first_event_ms: dict[str, int] = field(default_factory=dict)


class _Camera(RawMqttDevice):
    """One camera's connection and its per-device seq (telemetry and events share it)."""

    def __init__(self, spec: CameraSpec, interval_s: float, sent: Sent) -> None:
        super().__init__(spec.device_id)
        self.spec = spec
        self.interval_s = interval_s
        self.sent = sent
        self.rng = random.Random(spec.device_id)
        self.seq = 0
        self.packet_id = 0

    def _send(self, channel: Channel, payload: bytes, *, retain: bool = False) -> None:
        self.packet_id = self.packet_id % 65535 + 1
        self.send(wire.topic(self.spec.site, self.spec.device_id, channel), self.packet_id, payload, retain=retain)

    def birth(self) -> None:
        """The retained online status: kind, grid, heartbeat interval and the inventory labels."""
        now = int(time.time() * 1000)
        status = Status(
            DeviceState.ONLINE, 1, now, kind=DeviceKind.CAMERA, grid=self.spec.grid, agent="sim-camera-fleet",
            interval_s=self.interval_s, labels=self.spec.labels,
        )  # fmt: skip
        self._send(Channel.STATUS, wire.encode(status), retain=True)

    def metrics(self) -> dict[str, MetricValue]:
        """One poll's aggregates, shaped like the camera driver's (values are seeded noise)."""
        r = self.rng
        return {
            "fps": round(r.uniform(9.6, 10.0), 2),
            "stream_ok": True,
            "frame_age_s": round(r.uniform(0.05, 0.2), 2),
            "latency_ms": round(r.uniform(18, 45), 2),
            "people": r.randint(0, 12),
            "motion_ratio": round(r.uniform(0, 0.2), 4),
            "brightness": round(r.uniform(90, 150), 1),
            "sharpness": round(r.uniform(80, 400), 1),
        }

    def telemetry(self) -> None:
        """Send one telemetry message (one point) with the next seq."""
        self.seq += 1
        now = int(time.time() * 1000)
        self._send(Channel.TELEMETRY, wire.encode(wire.Telemetry(self.seq, now, (Point(now, self.metrics()),))))
        self.sent.ts_ms[(self.spec.device_id, self.seq)] = now
        self.sent.telemetry += 1

    def event(self, kind: EventType, state: EventState) -> None:
        """Send a camera event (raised or cleared) with the next seq."""
        self.seq += 1
        now = int(time.time() * 1000)
        ev = Event(self.seq, now, f"{kind.value}-{self.seq}", kind.value, state, Severity.MAJOR, value=1.0)
        self._send(Channel.EVENT, wire.encode(ev))
        self.sent.ts_ms[(self.spec.device_id, self.seq)] = now
        self.sent.first_event_ms.setdefault(self.spec.device_id, now)
        self.sent.events += 1


class CameraFleet:
    """Connect a street of cameras, publish their telemetry at their rate, raise tamper storms."""

    def __init__(self, specs: Sequence[CameraSpec], host: str, port: int, interval_s: float = 10.0) -> None:
        self.specs = list(specs)
        self.host, self.port = host, port
        self.interval_s = interval_s
        self.sent = Sent()
        self.cameras: list[_Camera] = []

    async def connect(self, timeout_s: float = 60.0) -> float:
        """Open every connection and send every birth; returns the seconds it took."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        gate = asyncio.Semaphore(CONNECT_BURST)

        async def one(spec: CameraSpec) -> _Camera:
            async with gate:
                cam = _Camera(spec, self.interval_s, self.sent)
                await loop.create_connection(lambda: cam, self.host, self.port)
                await asyncio.wait_for(cam.connected, timeout_s)
                cam.birth()
                return cam

        self.cameras = list(await asyncio.gather(*(one(s) for s in self.specs)))
        return time.monotonic() - started

    async def run(self, seconds: float, storm_at_s: float, storm: int, storm_s: float) -> None:
        """Telemetry from every camera once per interval (spread evenly) for ``seconds``; at
        ``storm_at_s`` the first ``storm`` cameras raise ``tamper_covered`` within ``storm_s``."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        slot = self.interval_s / max(1, len(self.cameras))
        stormed = 0
        n = 0
        while True:
            now = loop.time() - t0
            if now >= seconds:
                break
            while n * slot <= now:
                self.cameras[n % len(self.cameras)].telemetry()
                n += 1
            if now >= storm_at_s and stormed < storm:
                due = storm if storm_s <= 0 else min(storm, int((now - storm_at_s) / storm_s * storm) + 1)
                for cam in self.cameras[stormed:due]:
                    cam.event(EventType.TAMPER_COVERED, EventState.ACTIVE)
                stormed = max(stormed, due)
            await asyncio.sleep(0.005)

    async def drain(self, timeout_s: float = 10.0) -> int:
        """Wait until the broker acknowledged every publish (QoS 1); returns how many never were."""
        want = len(self.sent.ts_ms) + len(self.cameras)  # and every birth
        deadline = time.monotonic() + timeout_s
        while sum(c.acked for c in self.cameras) < want and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return want - sum(c.acked for c in self.cameras)

    async def close(self) -> None:
        """DISCONNECT every camera (cleanly: no LWT, the births stay retained)."""
        for cam in self.cameras:
            if cam.transport is not None:
                cam.transport.write(encode(Disconnect()))
                cam.transport.close()
        await asyncio.sleep(0.2)
