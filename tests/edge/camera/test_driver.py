"""The camera drivers through the agent's interface: ``poll()``, ``snapshot()``, ``close()``."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import pytest

import simulators.camera  # noqa: F401  (registers sim_camera)
from edge.camera.driver import CameraDriver
from edge.drivers import DriverEvent, Sample, get_driver_spec
from simulators.camera import SCENES, SceneRenderer
from simulators.servers import wait_until

METRICS = {"fps", "stream_ok", "latency_ms", "people", "motion_ratio", "brightness", "sharpness"}


class Poller:
    """Polls a driver like the agent does, keeping every event."""

    def __init__(self, driver: CameraDriver) -> None:
        self.driver = driver
        self.events: list[DriverEvent] = []
        self.samples: list[Sample] = []

    def poll(self) -> Sample:
        sample = self.driver.poll(int(time.time() * 1000))
        self.samples.append(sample)
        self.events.extend(sample.events)
        return sample

    def seen(self, kind: str, state: str) -> bool:
        self.poll()
        return any(e.type == kind and e.state.value == state for e in self.events)


def make(config: dict[str, object]) -> CameraDriver:
    spec = get_driver_spec(str(config["type"]))
    driver = spec.factory(spec.config_model.model_validate(config))
    assert isinstance(driver, CameraDriver)
    return driver


def test_sim_camera_poll_reports_metrics_and_tamper_events() -> None:
    driver = make({"type": "sim_camera", "scene": "covered", "fps": 5, "speed": 15})
    poller = Poller(driver)
    try:
        wait_until(lambda: poller.seen("tamper_covered", "active"), timeout=20, what="tamper_covered active")
        wait_until(lambda: poller.seen("tamper_covered", "cleared"), timeout=20, what="tamper_covered cleared")
        kinds = [(e.type, e.state.value) for e in poller.events]
        assert kinds == [("tamper_covered", "active"), ("tamper_covered", "cleared")]
        wait_until(lambda: poller.poll().metrics.get("fps", 0) > 0, timeout=10, what="frames")
        sample = poller.samples[-1]
        assert set(sample.metrics) >= METRICS
        assert sample.metrics["stream_ok"] is True
        jpeg = driver.snapshot()
        assert jpeg.startswith(b"\xff\xd8")
    finally:
        driver.close()


def test_camera_driver_on_a_file_and_on_a_dead_stream(tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (640, 480))
    renderer = SceneRenderer(SCENES["static"], seed=1)
    for i in range(10):
        frame = renderer.render(i / 10)
        assert frame is not None
        writer.write(frame)
    writer.release()
    live = make({"type": "camera", "source": str(clip), "zones": []})
    poller = Poller(live)
    try:
        wait_until(lambda: poller.poll().metrics.get("stream_ok") is True, timeout=10, what="file frames")
    finally:
        live.close()

    dead = make({"type": "camera", "source": str(tmp_path / "nothing.avi"), "stream_timeout_s": 0.5})
    poller = Poller(dead)
    try:
        with pytest.raises(Exception, match="no frame"):
            dead.snapshot()
        wait_until(lambda: poller.seen("stream_lost", "active"), timeout=10, what="stream_lost")
        assert poller.samples[-1].metrics["stream_ok"] is False
        assert poller.samples[-1].metrics["fps"] == 0
        assert int(poller.samples[-1].metrics["stream_failures"]) >= 1
    finally:
        dead.close()


def test_sim_camera_config_fails_fast() -> None:
    spec = get_driver_spec("sim_camera")
    with pytest.raises(ValueError, match="unknown scene"):
        spec.config_model.model_validate({"type": "sim_camera", "scene": "nope"})
    with pytest.raises(ValueError, match="unique"):
        zone = {"name": "a", "polygon": [[0, 0], [1, 0], [1, 1]]}
        spec.config_model.model_validate({"type": "sim_camera", "zones": [zone, zone]})
