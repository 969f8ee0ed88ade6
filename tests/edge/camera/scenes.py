"""Helpers for camera tests: run a scene through the real pipeline and collect its events."""

from __future__ import annotations

from typing import Any

from edge.camera.config import CameraConfigBase, PrivacyConfig, ZoneConfig
from edge.camera.pipeline import CameraPipeline
from edge.camera.privacy import Image, PixelBox, PrivacyFilter
from edge.drivers import DriverEvent
from simulators.camera import SCENES, SceneSpec, iter_scene

START_MS = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
#: Scene tests run at 5 fps: enough for every debounce, half the CPU of 10 fps.
FPS = 5.0
GROUND = [(0.0, 0.6), (1.0, 0.6), (1.0, 1.0), (0.0, 1.0)]


def no_faces(_image: Image) -> list[PixelBox]:
    """A face detector stand-in for scene tests (the real one is tested on photographs)."""
    return []


def config(**zone: Any) -> CameraConfigBase:
    """A camera config with one ground zone named ``square`` carrying ``zone`` settings."""
    return zones(square=zone) if zone else CameraConfigBase.model_validate({})


def zones(**named: dict[str, Any]) -> CameraConfigBase:
    """A camera config with several ground zones (same polygon), each with its own settings."""
    items = [{"name": name, "polygon": GROUND, **settings} for name, settings in named.items()]
    return CameraConfigBase.model_validate({"zones": [ZoneConfig.model_validate(z) for z in items]})


def run_scene(
    scene: str | SceneSpec, cfg: CameraConfigBase, *, seed: int = 0, real_faces: bool = False, fps: float = FPS
) -> tuple[list[tuple[float, DriverEvent]], list[dict[str, Any]]]:
    """Every event (with its scene time in s) and every frame's metrics of one pass of ``scene``."""
    spec = SCENES[scene] if isinstance(scene, str) else scene
    privacy = PrivacyFilter(cfg.privacy) if real_faces else PrivacyFilter(PrivacyConfig(), no_faces)
    pipeline = CameraPipeline(cfg, privacy)
    events: list[tuple[float, DriverEvent]] = []
    metrics: list[dict[str, Any]] = []
    for frame in iter_scene(spec, fps=fps, seed=seed, start_ms=START_MS):
        if frame.image is None:
            result = pipeline.missing(frame.ts_ms)
        else:
            result = pipeline.process(frame.image, frame.ts_ms)
        metrics.append(result.metrics)
        events.extend(((frame.ts_ms - START_MS) / 1000.0, e) for e in result.events)
    return events, metrics


def summary(events: list[tuple[float, DriverEvent]]) -> list[tuple[str, str, str | None]]:
    """(type, state, zone) of each event, in order."""
    return [(e.type, e.state.value, e.zone) for _, e in events]
