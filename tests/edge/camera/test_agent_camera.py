"""End to end on a real broker: the real agent runs sim_camera; the event and its verified snapshot arrive."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from edge import wire
from hub.evidence.snapshots import SnapshotStore
from simulators.servers import Mosquitto, wait_until
from tests.edge.agent_helpers import REPO, terminate, write_toml
from tests.edge.mqtt_probe import Probe

LAUNCH = "import sys, simulators.camera; from edge.cli import main; sys.exit(main(sys.argv[1:]))"


def moved_event(probe: Probe) -> wire.Event | None:
    for m in probe.on(wire.Channel.EVENT):
        msg = m.message()
        if isinstance(msg, wire.Event) and msg.type == "tamper_moved" and msg.state is wire.EventState.ACTIVE:
            return msg
    return None


@pytest.mark.integration
def test_agent_publishes_camera_event_with_verifiable_snapshot(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = write_toml(
        tmp_path / "cam.toml",
        {
            "device": {"id": "cam-1", "site": "site-a", "kind": "camera", "grid": "110105001002003"},
            "mqtt": {"url": mosquitto.url, "backoff_min_s": 0.05, "backoff_max_s": 0.5, "keepalive_s": 5},
            "outbox": {"backend": "sqlite", "path": str(tmp_path / "o.db")},
            "drivers": [{"type": "sim_camera", "scene": "moved", "fps": 5, "speed": 6, "interval_s": 0.5}],
        },
    )
    probe = Probe(mosquitto.url, wire.subscription(site="site-a", device_id="cam-1"))
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "--log-level", "WARNING", "edge", "run", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: moved_event(probe) is not None or proc.poll() is not None, 40, what="tamper_moved event")
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        event = moved_event(probe)
        assert event is not None and event.snapshot is not None
        assert event.snapshot.status == "sent" and event.snapshot.sha256 is not None
        name = wire.topic("site-a", "cam-1", wire.Channel.SNAPSHOT, event_id=event.event_id)

        def snapshots() -> list[bytes]:
            return [m.payload for m in probe.on(wire.Channel.SNAPSHOT) if m.topic == name]

        wait_until(snapshots, 10, what="snapshot payload")
        payload = snapshots()[0]
        assert hashlib.sha256(payload).hexdigest() == event.snapshot.sha256
        # The hub side verifies and stores it.
        store = SnapshotStore(tmp_path / "hub")
        store.announce("cam-1", event, event.ts)
        assert store.store_snapshot("cam-1", event.event_id, payload, event.ts) is None
        assert store.read("cam-1", event.event_id) == payload
        telemetry = [m.message() for m in probe.on(wire.Channel.TELEMETRY)]
        metrics = {k for t in telemetry if isinstance(t, wire.Telemetry) for p in t.points for k in p.metrics}
        assert {"fps", "stream_ok", "people", "brightness", "sharpness", "motion_ratio"} <= metrics
    finally:
        terminate(proc)
        probe.close()
